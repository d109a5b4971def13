"""Peak memory of ``postfocus serve`` (the server and its workers) while two large flat PNGs are uploaded.

A decompression bomb: two RGB PNGs of SIDE x SIDE zeros (the second with one white row, so it is not dropped as a
repeat), written a row at a time (0.4 MB each at 12000x12000), are posted to a real server on a free port over a
fresh data folder; ``VmHWM`` of the server and of every child is polled every 0.2 s until the job ends or SECONDS
pass. Prints the answer, the job's end and the peak RSS (MB) of each process; the server is stopped after.

Usage:
    python bench/web_upload_rss.py SRC SIDE SECONDS
    python bench/web_upload_rss.py src 12000 30                    # this checkout: a 413, no worker
    python bench/web_upload_rss.py /tmp/base/src 12000 300         # another version's src (e.g. main's)
"""
import os, signal, subprocess, sys, time, tempfile
import httpx

def flat_png(width, height, first=0):
    import struct, zlib
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    packer, row, body = zlib.compressobj(9), bytes(1 + 3 * width), []
    body.append(packer.compress(bytes([0]) + bytes([first]) * (3 * width)))
    for _ in range(height - 1):
        body.append(packer.compress(row))
    body.append(packer.flush())
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b""))

def tree(pid):
    out = {pid}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid in out or ppid == pid:
                out.add(int(p))
    return out

def hwm(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) // 1024
    except OSError:
        return 0
    return 0

src, side, wait = os.path.abspath(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
data = tempfile.mkdtemp(prefix="fixes23-rss-")
port = 8700 + os.getpid() % 200
proc = subprocess.Popen([sys.executable, "-m", "postfocus", "serve", "--data-dir", data, "--port", str(port),
                         "--no-browser"], env={**os.environ, "PYTHONPATH": src}, start_new_session=True,
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
base = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        httpx.get(base + "/api/info"); break
    except httpx.HTTPError:
        time.sleep(0.2)
peak = {}
bomb = flat_png(side, side)
t = time.monotonic()
r = httpx.post(base + "/api/jobs", headers={"X-Postfocus": "1"}, timeout=120,
               files=[("files", ("a.png", bomb, "image/png")), ("files", ("b.png", flat_png(side, side, 255), "image/png"))])
print("upload", len(bomb), "bytes each:", r.status_code, r.text[:300])
end = time.monotonic() + wait
state = None
while time.monotonic() < end:
    for p in tree(proc.pid):
        peak[p] = max(peak.get(p, 0), hwm(p))
    if r.status_code == 201:
        state = httpx.get(base + f"/api/jobs/{r.json()['id']}").json()
        if state["state"] in ("done", "failed"):
            break
    time.sleep(0.2)
print("job:", None if state is None else (state["state"], state.get("error"), state.get("progress")))
print("peak RSS MB: server", peak.get(proc.pid), "children", sorted(v for k, v in peak.items() if k != proc.pid))
os.killpg(proc.pid, signal.SIGTERM)
proc.wait(30)
