"""Errors as RFC 9457 problem documents: a stable ``code`` and a sentence for people."""

from starlette.responses import JSONResponse

PROBLEM_TYPE = "application/problem+json"


def problem(status: int, code: str, detail: str, **extra: object) -> JSONResponse:
    body = {"type": f"urn:zion:problem:{code}", "status": status, "code": code, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE)
