"""The m365mail handler at Exchange Online's pace: one mailbox, Graph's 4 concurrent requests
per app and mailbox, every request taking a fixed latency while it holds its slot (the sandbox's
set_latency), no budget. Prints requests per message, the ceiling that the slots and the latency
allow for them (4 / latency / requests per message), the rate reached as a fraction of it, and
the share of the run during which all 4 slots were busy (from the sandbox's slot record).

A first measurement for issue #23, not its full scenario (no peers, no 20 mailboxes, no
latency distribution). Usage, from the workspace root after `cargo build -p m365mail-sandbox
-p m365mail`:

    python3 scripts/bench/exo_pace.py N MODE LATENCY_MS [graph|ews]
    # MODE: mark-read|keep|move|delta-read (Graph); mark-read|move (EWS)

Set M365MAIL_BIN and SANDBOX_BIN to use other builds (default: target/debug).
"""
import json, subprocess, sys, time, urllib.request, os, socket, tempfile
TARGET = os.environ.get("CARGO_TARGET_DIR", "target")
SANDBOX_BIN = os.environ.get("SANDBOX_BIN", f"{TARGET}/debug/m365mail-sandbox")
M365MAIL_BIN = os.environ.get("M365MAIL_BIN", f"{TARGET}/debug/m365mail")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
MODE = sys.argv[2] if len(sys.argv) > 2 else "mark-read"
LAT = int(sys.argv[3]) if len(sys.argv) > 3 else 120
KIND = sys.argv[4] if len(sys.argv) > 4 else "graph"  # or "ews"
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
port = free()
base = f"http://127.0.0.1:{port}"
sb = subprocess.Popen([SANDBOX_BIN, "--port", str(port), "--smtp-port", "0"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def admin(cmd):
    req = urllib.request.Request(base + "/_sandbox/admin", data=json.dumps(cmd).encode(),
                                 headers={"content-type": "application/json"})
    return urllib.request.urlopen(req).read()
def get(path):
    return json.loads(urllib.request.urlopen(base + path).read())
for _ in range(100):
    try:
        get("/_sandbox/requests"); break
    except Exception:
        time.sleep(0.1)
tenant = get("/_sandbox/tenant")
tid = tenant["info"]["id"] if "info" in tenant else tenant.get("id")
mb = "helpdesk@contoso.example"
for i in range(N):
    admin({"op": "inject_mime", "to": [mb], "mime": f"From: c{i}@fabrikam.example\r\nTo: {mb}\r\nSubject: m {i}\r\nMessage-ID: <exo-{i}@fabrikam.example>\r\n\r\nbody {i}\r\n"})
out = tempfile.mkdtemp()
ack = {"mark-read": 'acknowledge = "mark-read"', "keep": 'acknowledge = "keep"\nmode = "delta"', "move": 'acknowledge = "move:Processed"', "delta-read": 'acknowledge = "mark-read"\nmode = "delta"'}[MODE]
url = f"{base}/v1.0" if KIND == "graph" else f"{base}/EWS/Exchange.asmx"
cfg = f'''
[[apps]]
name = "demo"
tenant = "{tid}"
authority_base = "{base}"
client_id = "00000000-0000-0000-0000-00000000d3e0"
client_secret = "demo-secret-do-not-use-in-production"

[[sources]]
name = "box"
kind = "{KIND}"
app = "demo"
mailbox = "{mb}"
url = "{url}"
{ack}

[sources.routing.mailbox]
primary = "{mb}"

[[sources.routing.rules]]
match = "default"
project = "P"

[handler]
output_dir = "{out}"
batch_size = 50
'''
open(out + "/m.toml", "w").write(cfg)
admin({"op": "set_throttle", "config": {"graph_concurrency": 4, "ews_concurrency": 27, "budget": None, "window_secs": 600, "retry_after_secs": 1}})
admin({"op": "set_latency", "latency": {"median_ms": LAT, "sigma": 0.0, "max_ms": LAT}})
admin({"op": "clear_request_log"})
admin({"op": "record_slots", "on": True})
t0 = time.time()
r = subprocess.run([M365MAIL_BIN, "run", "--once", "--json", "--config", out + "/m.toml"], capture_output=True, text=True)
secs = time.time() - t0
summary = json.loads(r.stdout) if r.stdout.strip() else {}
handled = summary.get("sources", [{}])[0].get("handled")
reqs = get("/_sandbox/requests")
slots = get("/_sandbox/slots")
if KIND == "graph":
    counted = reqs["graph_requests_as_counted"]
else:
    counted = sum(e["count"] for e in reqs["entries"] if e["path"].startswith("/EWS"))
LIMIT = 4 if KIND == "graph" else 27
g = [s for s in slots if s["protocol"] == KIND]
start = min(s["start_us"] for s in g); end = max(s["end_us"] for s in g)
# busy fraction: time with 4 slots held
edges = sorted([(s["start_us"], 1) for s in g] + [(s["end_us"], -1) for s in g])
active = 0; busy = 0; since = start; hist = {}
for t, d in edges:
    hist[active] = hist.get(active, 0) + (t - since)
    if active >= LIMIT: busy += t - since
    since = t; active += d
span = end - start
rpm = counted / max(1, handled or 1)
ceiling = LIMIT / (LAT / 1000.0) / rpm
rate = (handled or 0) / (span / 1e6)
print(json.dumps({"kind": KIND, "mode": MODE, "N": N, "handled": handled, "wall_s": round(secs, 2), "graph_requests_as_counted": counted,
                  "requests_per_message": round(rpm, 3), "ceiling_msgs_s": round(ceiling, 2), "rate_msgs_s": round(rate, 2),
                  "fraction_of_ceiling": round(rate / ceiling, 3), "all_slots_busy_fraction": round(busy / span, 3),
                  "time_share_by_active_slots": {k: round(v / span, 3) for k, v in sorted(hist.items())},
                  "entries": [(e["method"], e["path"], e["count"]) for e in reqs["entries"]],
                  "batch_items": [(e["method"], e["path"], e["count"]) for e in reqs.get("batch_items", [])]}, indent=1))
if r.returncode != 0: print(r.stderr[-2000:])
sb.kill()
