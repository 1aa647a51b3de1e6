// libp2p 3 calls Promise.withResolvers (Node >= 22); Node 20 lacks it. Preload with --import.
Promise.withResolvers ??= function () { let resolve, reject; const promise = new this((res, rej) => { resolve = res; reject = rej }); return { promise, resolve, reject } }
