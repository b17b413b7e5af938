#!/usr/bin/env python3
"""A tiny ACP agent for the client's error and terminal cases (not a model: it follows a script).

Modes (argv[1]): silent (never answers initialize), garbage (answers initialize with a line that
is not JSON-RPC), slowstart (answers initialize after 2 s), dies (exits mid-turn), terminal (runs a command through the client's
terminal/* methods and shows it in a tool call), termhang (a terminal that runs until killed), stalls (goes
silent mid-turn, deaf to session/cancel), slowterm (waits 3 s on a terminal), resumable (can
session/resume, not load; each answer names its session), plain (neither), options / cfgoptions (modes and models,
as lists or as config options; each answer names the current ones), replay FILE (plays a recorded turn: each line
is {"update": ...} sent as a session/update, or {"request": {"method", "params"}} sent to the
client, whose answer is echoed back as a message chunk; {"result": ...} ends the turn).
"""
import json
import sys
import time

mode = sys.argv[1]
next_id = [1000]
current = {"mode": "ask", "model": "a"}


def choices():
    if mode == "options":
        return {
            "modes": {"currentModeId": current["mode"], "availableModes": [{"id": "ask", "name": "Ask"}, {"id": "auto", "name": "Auto"}]},
            "models": {"currentModelId": current["model"], "availableModels": [{"modelId": "a", "name": "A"}, {"modelId": "b", "name": "B"}]},
        }
    return {"configOptions": [
        {"id": "approval", "name": "Mode", "category": "mode", "type": "select", "currentValue": current["mode"],
         "options": [{"value": "ask", "name": "Ask"}, {"value": "auto", "name": "Auto"}]},
        {"id": "llm", "name": "Model", "category": "model", "type": "select", "currentValue": current["model"],
         "options": [{"value": "a", "name": "A"}, {"value": "b", "name": "B"}]},
    ]}


def send(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()


def err(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def read():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    return json.loads(line)


def request(method, params):
    next_id[0] += 1
    send({"jsonrpc": "2.0", "id": next_id[0], "method": method, "params": params})
    while True:
        m = read()
        if m.get("id") == next_id[0] and "method" not in m:
            return m


def update(sid, u):
    send({"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": sid, "update": u}})


def text(sid, t):
    update(sid, {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": t}})


if mode == "silent":
    err("starting up, please wait")
    time.sleep(3600)

while True:
    m = read()
    method, mid, params = m.get("method"), m.get("id"), m.get("params") or {}
    if method == "initialize":
        if mode == "slowstart":
            time.sleep(2)
        if mode == "garbage":
            err("warning: legacy output mode")
            sys.stdout.write("Welcome to agent v1!\n")
            sys.stdout.flush()
            time.sleep(3600)
        caps = {"sessionCapabilities": {"resume": {}}} if mode == "resumable" else {}
        send({"jsonrpc": "2.0", "id": mid, "result": {"protocolVersion": 1, "agentCapabilities": caps}})
    elif method == "session/new":
        result = {"sessionId": "script-%d" % time.time_ns()}
        if mode in ("options", "cfgoptions"):
            result.update(choices())
        send({"jsonrpc": "2.0", "id": mid, "result": result})
    elif method == "session/set_mode" and mode == "options":
        current["mode"] = params["modeId"]
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
        update(params["sessionId"], {"sessionUpdate": "current_mode_update", "currentModeId": current["mode"]})
    elif method == "session/set_model" and mode == "options":
        current["model"] = params["modelId"]
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    elif method == "session/set_config_option" and mode == "cfgoptions":
        current[{"approval": "mode", "llm": "model"}[params["configId"]]] = params["value"]
        send({"jsonrpc": "2.0", "id": mid, "result": choices()})
    elif method == "session/resume" and mode == "resumable":
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    elif method == "session/prompt":
        sid = params["sessionId"]
        if mode == "slowstart":
            text(sid, "the prompt ran")
        if mode == "dies":
            text(sid, "Working on it")
            err("fatal: out of cheese")
            sys.exit(3)
        if mode == "replay":
            result = {"stopReason": "end_turn"}
            for line in open(sys.argv[2]):
                rec = json.loads(line)
                if "update" in rec:
                    update(sid, rec["update"])
                elif "request" in rec:
                    params = dict(rec["request"]["params"], sessionId=sid)
                    answer = request(rec["request"]["method"], params)
                    text(sid, "client answered: " + json.dumps(answer.get("result", answer.get("error")), sort_keys=True))
                elif "result" in rec:
                    result = rec["result"]
            send({"jsonrpc": "2.0", "id": mid, "result": result})
            continue
        if mode in ("resumable", "plain"):
            text(sid, "in session " + sid)
        if mode in ("options", "cfgoptions"):
            text(sid, "mode %s model %s" % (current["mode"], current["model"]))
        if mode == "stalls":
            text(sid, "Working on it")
            err("waiting for a lock")
            time.sleep(3600)
        if mode == "slowterm":
            r = request("terminal/create", {"sessionId": sid, "command": "sleep", "args": ["3"]})
            request("terminal/wait_for_exit", {"sessionId": sid, "terminalId": r["result"]["terminalId"]})
            text(sid, "slept")
        if mode == "termhang":
            r = request("terminal/create", {"sessionId": sid, "command": "sh",
                                            "args": ["-c", "echo $$ > term.pid; exec sleep 600"]})
            tid = r["result"]["terminalId"]
            exit_status = request("terminal/wait_for_exit", {"sessionId": sid, "terminalId": tid})
            text(sid, "terminal ended: " + json.dumps(exit_status.get("result"), sort_keys=True))
            send({"jsonrpc": "2.0", "id": mid, "result": {"stopReason": "cancelled"}})
            continue
        if mode == "terminal":
            update(sid, {"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "sh -c",
                         "kind": "execute", "status": "pending"})
            outside = request("terminal/create", {"sessionId": sid, "command": "pwd", "cwd": "/"})
            text(sid, "outside: " + json.dumps(outside.get("error", {}).get("message", "allowed")))
            r = request("terminal/create", {"sessionId": sid, "command": "sh",
                                            "args": ["-c", "echo term-out; pwd; echo err-out >&2"]})
            tid = r["result"]["terminalId"]
            update(sid, {"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "in_progress",
                         "content": [{"type": "terminal", "terminalId": tid}]})
            exit_status = request("terminal/wait_for_exit", {"sessionId": sid, "terminalId": tid})["result"]
            out = request("terminal/output", {"sessionId": sid, "terminalId": tid})["result"]
            request("terminal/release", {"sessionId": sid, "terminalId": tid})
            update(sid, {"sessionUpdate": "tool_call_update", "toolCallId": "t1", "status": "completed"})
            text(sid, "exit %s, %d bytes" % (exit_status.get("exitCode"), len(out["output"])))
        send({"jsonrpc": "2.0", "id": mid, "result": {"stopReason": "end_turn"}})
    elif mid is not None and method is not None:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "unknown"}})
