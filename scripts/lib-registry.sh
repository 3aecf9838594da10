# Shared by scripts/bench (sourced, not run): a
# throwaway CNCF registry on a free 127.0.0.1 port, and a way to push an
# image of random uncompressed tar layers to it. The caller sets WORK (a
# work directory it removes), PIDS (an array; the caller kills these PIDs
# on exit) and a `die` function.

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry: starts the registry (its PID joins PIDS); sets REG_PORT and REG.
start_registry() {
REG_PORT=$(free_port)
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$REG_PORT
  secret: pulltar-bench-secret
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
PIDS+=($!)
# Bounded wait (200 x 50 ms) for the registry to answer.
python3 - "$REG_PORT" <<'EOF' || { cat "$WORK/registry.log" >&2; die "the registry never answered on 127.0.0.1:$REG_PORT"; }
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1).close()
        sys.exit(0)
    except Exception:
        time.sleep(0.05)
sys.exit(1)
EOF
REG="127.0.0.1:$REG_PORT"
}

# push_image REPO:TAG LAYER_COUNT LAYER_BYTES: random data in uncompressed tar
# layers, streamed through a temporary file (one layer at a time).
push_image() {
    python3 - "$REG_PORT" "$1" "$2" "$3" "$WORK/tmp" <<'EOF'
import hashlib, json, os, sys, tarfile, time, urllib.request

port, ref, count, size, tmp = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
repo, tag = ref.rsplit(":", 1)
base = f"http://127.0.0.1:{port}"
CHUNK = 4 << 20

def upload(path, length, digest):
    req = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    with urllib.request.urlopen(req) as r:
        loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    with open(path, "rb") as f:
        req = urllib.request.Request(f"{loc}{sep}digest={digest}", method="PUT", data=f,
                                     headers={"Content-Type": "application/octet-stream",
                                              "Content-Length": str(length)})
        with urllib.request.urlopen(req) as r:
            assert r.status == 201, r.status

def layer(i):
    """A tar with one file of SIZE random bytes, written to disk while hashed."""
    path = os.path.join(tmp, "layer.tar")
    h = hashlib.sha256()
    with open(path, "wb") as out:
        def write(b):
            h.update(b)
            out.write(b)
        info = tarfile.TarInfo(f"data/layer{i}.bin")
        info.size, info.mtime, info.mode = size, 0, 0o644
        write(info.tobuf(format=tarfile.USTAR_FORMAT))
        left = size
        while left > 0:
            n = min(CHUNK, left)
            write(os.urandom(n))
            left -= n
        pad = (-size) % 512
        write(b"\0" * (pad + 1024))  # pad the member, then the end-of-archive blocks
        length = out.tell()
    digest = "sha256:" + h.hexdigest()
    upload(path, length, digest)
    os.unlink(path)
    return {"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
            "size": length, "digest": digest}

t0 = time.time()
descs = [layer(i) for i in range(count)]
config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                     "config": {"Env": ["PATH=/usr/bin:/bin"]},
                     "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}).encode()
cpath = os.path.join(tmp, "config.json")
with open(cpath, "wb") as f:
    f.write(config)
cdigest = "sha256:" + hashlib.sha256(config).hexdigest()
upload(cpath, len(config), cdigest)
os.unlink(cpath)
manifest = json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                  "size": len(config), "digest": cdigest},
                       "layers": descs}).encode()
req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{tag}", method="PUT", data=manifest,
                             headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
with urllib.request.urlopen(req) as r:
    assert r.status == 201, r.status
total = sum(d["size"] for d in descs) + len(config)
print(f"   pushed {ref}: {count} layers, {total / 1e6:.1f} MB in {time.time() - t0:.1f} s")
EOF
}

