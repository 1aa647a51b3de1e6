"""Local stand-ins for the services bridges talk to, for tests and `zion devnet`: localstripe
(a fake Stripe) and an OpenAI-compatible test server. Never used by a running node; they
import nothing of zion, so that they run as small processes of their own."""
