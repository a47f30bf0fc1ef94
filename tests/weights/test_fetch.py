"""`membench weights`: the table, and a real download from a local HTTP server (checksum, atomic rename, refusals)."""
import hashlib
import http.server
import os
import threading
from functools import partial

import pytest

from membench.cli import main
from membench.core.errors import MembenchError, UnavailableError
from membench.weights.fetch import fetch
from membench.weights.table import entries, entry, local_file

PAYLOAD = os.urandom(3000) + b"membench weights test"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep stderr for membench's one line
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server (a thread) serving files from a folder; yields (base URL, folder)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    reg = tmp_path / "registry"
    (reg / "weights").mkdir(parents=True)
    monkeypatch.setenv("MEMBENCH_REGISTRY", str(reg))
    monkeypatch.setenv("MEMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEMBENCH_OFFLINE", raising=False)
    return reg / "weights"


def add_entry(folder, name, url, **fields):
    lines = [f'url = "{url}"', f'file = "weights/{name}.bin"', 'used_by = "test"']
    lines += [f"{k} = {v}" if isinstance(v, int) else f'{k} = "{v}"' for k, v in fields.items()]
    (folder / f"{name}.toml").write_text("\n".join(lines) + "\n")


def test_download_verifies_and_renames_atomically(server, registry, capsys):
    base, root = server
    (root / "w.bin").write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    add_entry(registry, "good", f"{base}/w.bin", sha256=digest, size=len(PAYLOAD))
    add_entry(registry, "prefix", f"{base}/w.bin", sha256_prefix=digest[:8])
    assert main(["weights", "fetch", "good"]) == 0
    out = capsys.readouterr().out
    target = entry("good").path()
    assert target.read_bytes() == PAYLOAD and f"sha256 {digest}" in out and "verified: sha256" in out
    assert [p.name for p in target.parent.iterdir()] == ["good.bin"]  # no temporary file left
    assert local_file("good", "test", "x") == target
    got = fetch("good")  # present and verified: kept, not downloaded again
    assert not got.downloaded and got.sha256 == digest
    got = fetch("prefix")
    assert got.downloaded and got.verified == "sha256 prefix (32 bits)"
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    assert "| good " in listing and "present" in listing and digest in listing and str(target) in listing


def test_mismatch_is_refused_and_nothing_is_written(server, registry, capsys):
    base, root = server
    (root / "w.bin").write_bytes(PAYLOAD)
    add_entry(registry, "bad", f"{base}/w.bin", sha256="0" * 64)
    add_entry(registry, "badsize", f"{base}/w.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=5)
    for name in ("bad", "badsize"):
        assert main(["weights", "fetch", name]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "nothing written" in err[0]
        assert not entry(name).path().parent.exists() or not any(entry(name).path().parent.iterdir())


def test_a_corrupted_cached_file_is_refused_on_use_and_replaced_by_fetch(server, registry):
    base, root = server
    (root / "w.bin").write_bytes(PAYLOAD)
    add_entry(registry, "good", f"{base}/w.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest())
    target = entry("good").path()
    with pytest.raises(UnavailableError, match="membench weights fetch good.*place it at"):
        local_file("good", "test", "test:weights=FILE")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not it")
    with pytest.raises(MembenchError, match="does not match the published checksum"):
        local_file("good", "test", "test:weights=FILE")
    assert fetch("good").downloaded and target.read_bytes() == PAYLOAD


def test_unverifiable_offline_and_unreachable(server, registry, monkeypatch, capsys):
    base, root = server
    (root / "w.bin").write_bytes(PAYLOAD)
    add_entry(registry, "nosum", f"{base}/w.bin")
    add_entry(registry, "missing", f"{base}/none.bin", sha256="0" * 64)
    with pytest.raises(MembenchError, match="no checksum.*--allow-unverified"):
        fetch("nosum")
    assert main(["weights", "fetch", "nosum", "--allow-unverified"]) == 0
    assert "UNVERIFIED" in capsys.readouterr().out
    with pytest.raises(MembenchError, match=r"downloading .*none.bin failed \(HTTPError.*place it at"):
        fetch("missing")
    monkeypatch.setenv("MEMBENCH_OFFLINE", "1")
    with pytest.raises(MembenchError, match=r"cannot reach 127.0.0.1 \(offline\); download http.*none.bin and place it at"):
        fetch("missing")


@pytest.mark.parametrize("field, value, match", [
    ("url", "file:///etc/passwd", "http"), ("file", "../x", "relative"), ("sha256", "abc", "64 hex"),
    ("sha256_prefix", "12", "8 to 63"), ("size", -1, "positive"), ("colour", "red", "unknown key")])
def test_bad_entries_are_one_line(registry, field, value, match):
    fields = {"url": "https://example.org/w.bin", "file": "weights/w.bin", field: value}
    (registry / "w.toml").write_text("\n".join(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}"
                                               for k, v in fields.items()) + "\n")
    with pytest.raises(MembenchError, match=match):
        entry("w")


def test_builtin_table_is_valid_and_honest():
    table = {w.name: w for w in entries()}
    assert {"inception-v3", "clip-vit-b-32-laion2b", "sscd-disc-mixup"} <= set(table)
    inc = table["inception-v3"]
    assert inc.sha256_prefix and inc.sha256_prefix in inc.url.rsplit("/", 1)[1]  # the prefix is the one in the name
    assert not table["sscd-disc-mixup"].expected  # SSCD publishes no checksum: none is made up
    assert all(w.url.startswith("https://") and w.checksum_source for w in table.values())
