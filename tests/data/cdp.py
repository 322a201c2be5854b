#!/usr/bin/python3
"""A line-driven Chrome DevTools Protocol client for the dashboard test (python3-websocket).

Usage: cdp.py <debugging port>. Reads commands on stdin, one per line, answers one line each:
  goto <url>              navigate and wait for the load event        -> ok
  eval <expression>       Runtime.evaluate, returns the value as JSON -> <json>
  wait <secs> <expr>      poll the expression until truthy            -> ok | timeout
  shot <path>             PNG screenshot of the viewport              -> ok
  type <selector> <text>  focus an input, set its value, submit its form -> ok
"""
import base64, json, sys, time, urllib.request
import websocket

port = sys.argv[1]
deadline = time.time() + 20
while True:
    try:
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port))
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            break
    except Exception:
        pass
    if time.time() > deadline:
        print("no page target", flush=True)
        sys.exit(1)
    time.sleep(0.2)
ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
seq = 0

def call(method, params=None, wait_event=None):
    global seq
    seq += 1
    ws.send(json.dumps({"id": seq, "method": method, "params": params or {}}))
    got_event = wait_event is None
    result = None
    while True:
        m = json.loads(ws.recv())
        if m.get("id") == seq:
            if "error" in m:
                raise RuntimeError(m["error"])
            result = m.get("result")
        elif wait_event and m.get("method") in wait_event:
            got_event = True
        if result is not None and got_event:
            return result

def evaluate(expr):
    r = call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
    if "exceptionDetails" in r:
        return {"exception": r["exceptionDetails"].get("text")}
    return r["result"].get("value")

call("Page.enable")
call("Runtime.enable")
call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
for line in sys.stdin:
    line = line.rstrip("\n")
    cmd, _, arg = line.partition(" ")
    try:
        if cmd == "goto":
            # A new document fires load; a change of the #fragment only navigates within.
            call("Page.navigate", {"url": arg},
                 wait_event=("Page.loadEventFired", "Page.navigatedWithinDocument"))
            print("ok", flush=True)
        elif cmd == "eval":
            print(json.dumps(evaluate(arg)), flush=True)
        elif cmd == "wait":
            secs, _, expr = arg.partition(" ")
            expr = "!!(%s)" % expr
            end = time.time() + float(secs)
            while time.time() < end and not evaluate(expr):
                time.sleep(0.2)
            print("ok" if evaluate(expr) else "timeout", flush=True)
        elif cmd == "shot":
            r = call("Page.captureScreenshot", {"format": "png"})
            with open(arg, "wb") as f:
                f.write(base64.b64decode(r["data"]))
            print("ok", flush=True)
        elif cmd == "type":
            sel, _, text = arg.partition(" ")
            evaluate("(function(){var e=document.querySelector(%s);e.focus();e.value=%s;"
                     "e.form.dispatchEvent(new Event('submit',{cancelable:true}));})()" % (json.dumps(sel), json.dumps(text)))
            print("ok", flush=True)
        else:
            print("unknown command", flush=True)
    except Exception as e:
        print("error %s" % e, flush=True)
