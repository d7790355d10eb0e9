"""The BPF cache: a program loaded from it behaves as the one bcc compiles, with maps of its own per load;
its key follows the source and the params; an entry that does not check out is rebuilt; concurrent first
loads compile once; clearing removes only its own entries."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgesim.bpf import cache, loader, testrun
from edgesim.errors import EdgesimError
from tests.conftest import require_root

pytestmark = pytest.mark.root

# Every map kind the agents use, a tail call through a prog array, and a param that changes the code.
SOURCE = textwrap.dedent(
    """\
    #include <uapi/linux/bpf.h>

    struct lpm_key {
        __u32 prefixlen;
        __u32 addr;
    };

    BPF_ARRAY(config, __u32, 1);
    BPF_TABLE("lru_hash", __u32, __u64, seen, 16);
    BPF_LPM_TRIE(prefixes, struct lpm_key, __u32, 16);
    BPF_PERCPU_ARRAY(hits, __u64, 4);
    BPF_PROG_ARRAY(next, 1);
    BPF_ARRAY(ring, __u32, 64);

    int xdp_second(struct xdp_md *ctx)
    {
        int slot = 2;
        __u64 *hit = hits.lookup(&slot);

        if (hit)
            *hit += 1;
        return VERDICT;
    }

    int xdp_first(struct xdp_md *ctx)
    {
        void *data = (void *)(long)ctx->data;
        void *end = (void *)(long)ctx->data_end;
        struct lpm_key key = {32, 0};
        __u64 one = 1, *count;
        __u32 *verdict, *mode;
        int zero = 0;

        if (data + 4 > end)
            return XDP_ABORTED;
        key.addr = *(__u32 *)data;
        count = seen.lookup(&key.addr);
        if (count)
            *count += 1;
        else
            seen.update(&key.addr, &one);
        verdict = prefixes.lookup(&key);
        if (verdict)
            return *verdict;
        mode = config.lookup(&zero);
        if (mode && *mode == 1)
            next.call(ctx, 0);
        return XDP_PASS;
    }
    """
)
PACKET = bytes([198, 51, 100, 7]) + bytes(60)
XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    require_root()
    directory = tmp_path / "cache"
    monkeypatch.setenv("EDGESIM_BPF_CACHE_DIR", str(directory))
    monkeypatch.setenv("EDGESIM_BPF_CACHE", "on")
    return directory


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "cachetest.c"
    path.write_text(SOURCE)
    return path


@pytest.fixture
def programs() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for program in made:
        program.cleanup()


def compiled(source: Path, made: list[Any], verdict: int = XDP_TX) -> Any:
    program = loader.compile_program(source, params={"VERDICT": verdict})
    made.append(program)
    return program


def scenario(program: Any) -> dict[str, Any]:
    """Run the packet through every path of the program; what it returned and what its maps hold."""
    first = loader.load_xdp(program, "xdp_first")
    second = loader.load_xdp(program, "xdp_second")
    verdicts = [testrun.run(first, PACKET).retval]
    prefix = program[b"prefixes"]
    prefix[prefix.Key(24, int.from_bytes(bytes([198, 51, 100, 0]), sys.byteorder))] = prefix.Leaf(XDP_DROP)
    verdicts.append(testrun.run(first, PACKET).retval)
    prefix.clear()
    program[b"config"][0] = program[b"config"].Leaf(1)
    verdicts.append(testrun.run(first, PACKET).retval)  # mode 1, but the prog array is empty
    program[b"next"][0] = second
    verdicts.append(testrun.run(first, PACKET).retval)  # the tail call
    seen = {k.value: v.value for k, v in program[b"seen"].items()}
    hits = [sum(program[b"hits"][slot]) for slot in range(4)]
    ring = program[b"ring"]  # the load balancer's way: a whole table written and read in batches
    ring.items_update_batch((ring.Key * 64)(*range(64)), (ring.Leaf * 64)(*(3 * i for i in range(64))))
    batch = list(ring.items_lookup_batch())
    return {"verdicts": verdicts, "seen": seen, "hits": hits, "batch": batch}


def test_a_cached_program_runs_as_the_one_bcc_compiles(
    cache_dir: Path, source: Path, programs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = compiled(source, programs)
    assert type(cached).__name__ == "LoadedImage"
    monkeypatch.setenv("EDGESIM_BPF_CACHE", "off")
    fresh = compiled(source, programs)
    assert type(fresh).__name__ == "BPF"
    expected = {
        "verdicts": [XDP_PASS, XDP_DROP, XDP_PASS, XDP_TX],
        "seen": {int.from_bytes(PACKET[:4], sys.byteorder): 4},
        "hits": [0, 0, 1, 0],
        "batch": [(i, 3 * i) for i in range(64)],
    }
    assert scenario(fresh) == expected
    assert scenario(cached) == expected


def test_each_load_has_maps_of_its_own(cache_dir: Path, source: Path, programs: list[Any]) -> None:
    one, two = compiled(source, programs), compiled(source, programs)
    assert len(cache.entries(cache_dir)) == 1  # one compile, two loads
    assert scenario(one)["verdicts"] == [XDP_PASS, XDP_DROP, XDP_PASS, XDP_TX]
    fd = loader.load_xdp(two, "xdp_first")
    assert testrun.run(fd, PACKET).retval == XDP_PASS  # neither one's config nor its prog array
    assert {k.value: v.value for k, v in two[b"seen"].items()} == {
        int.from_bytes(PACKET[:4], sys.byteorder): 1
    }
    # And another process's load shares nothing with these: its map starts empty.
    child = textwrap.dedent(
        f"""\
        from pathlib import Path
        from edgesim.bpf import loader
        program = loader.compile_program(Path({str(source)!r}), params={{"VERDICT": {XDP_TX}}})
        print(len(program[b"seen"].items()))
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"


def test_the_key_follows_the_source_and_the_params(
    cache_dir: Path, source: Path, programs: list[Any]
) -> None:
    text = loader.translation_unit(source)
    flags = [f"-I{loader.BPF_DIR}", "-DVERDICT=3"]
    assert cache.digest(text, flags) == cache.digest(text, list(flags))
    assert cache.digest(text, flags) != cache.digest(text, [*flags[:1], "-DVERDICT=1"])
    assert cache.digest(text, flags) != cache.digest(text + "\n", flags)
    tx, drop = compiled(source, programs, XDP_TX), compiled(source, programs, XDP_DROP)
    assert len(cache.entries(cache_dir)) == 2
    for program, verdict in ((tx, XDP_TX), (drop, XDP_DROP)):
        program[b"config"][0] = program[b"config"].Leaf(1)
        program[b"next"][0] = loader.load_xdp(program, "xdp_second")
        assert testrun.run(loader.load_xdp(program, "xdp_first"), PACKET).retval == verdict
    source.write_text(SOURCE.replace("return XDP_PASS;\n}", "return XDP_DROP;\n}"))
    changed = compiled(source, programs)
    assert len(cache.entries(cache_dir)) == 3
    assert testrun.run(loader.load_xdp(changed, "xdp_first"), PACKET).retval == XDP_DROP


def _resum(data: dict[str, Any]) -> None:
    """Make an entry's own checksum match its (tampered) image, so that only the image's checks remain."""
    data["sha256"] = hashlib.sha256(json.dumps(data["image"], sort_keys=True).encode()).hexdigest()


def _drop_map_refs(data: dict[str, Any]) -> None:
    data["image"]["functions"]["xdp_first"]["map_refs"] = []
    _resum(data)


def _rename_map(data: dict[str, Any]) -> None:
    data["image"]["maps"][0]["name"] = "../etc"
    _resum(data)


def _flip_instruction(data: dict[str, Any]) -> None:
    function = data["image"]["functions"]["xdp_first"]
    function["insns"] = ("A" if function["insns"][0] != "A" else "B") + function["insns"][1:]


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: "",
        lambda text: text[: len(text) // 2],
        lambda text: "{not json",
        lambda text: json.dumps({**json.loads(text), "digest": "0" * 64}),
        lambda text: json.dumps((d := json.loads(text), _flip_instruction(d))[0]),
        lambda text: json.dumps((d := json.loads(text), _drop_map_refs(d))[0]),
        lambda text: json.dumps((d := json.loads(text), _rename_map(d))[0]),
    ],
    ids=["empty", "truncated", "not-json", "other-digest", "bit-flip", "no-map-refs", "bad-map-name"],
)
def test_a_damaged_entry_is_rebuilt_not_trusted(
    cache_dir: Path, source: Path, programs: list[Any], damage: Any
) -> None:
    compiled(source, programs)
    (key,) = cache.entries(cache_dir)
    entry = cache_dir / key / cache.ENTRY_FILE
    good = entry.read_text()
    entry.write_text(damage(good))
    assert cache.read_entry(entry, key) is None
    program = compiled(source, programs)
    assert cache.read_entry(entry, key) is not None
    assert json.loads(entry.read_text())["sha256"] == json.loads(good)["sha256"]
    assert scenario(program)["verdicts"] == [XDP_PASS, XDP_DROP, XDP_PASS, XDP_TX]


def test_concurrent_first_loads_compile_once(cache_dir: Path, source: Path) -> None:
    child = textwrap.dedent(
        f"""\
        import logging
        from pathlib import Path
        from edgesim.bpf import loader
        logging.basicConfig(level=logging.INFO)
        program = loader.compile_program(Path({str(source)!r}), params={{"VERDICT": {XDP_TX}}})
        print(loader.load_xdp(program, "xdp_first") > 0)
        """
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in children]
    assert [process.returncode for process in children] == [0, 0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["True"] * 3
    assert sum(err.count("compiled into the BPF cache") for _, err in outputs) == 1
    assert len(cache.entries(cache_dir)) == 1


def test_a_refused_program_shows_the_verifiers_reason(cache_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "unchecked.c"
    source.write_text(
        "#include <uapi/linux/bpf.h>\n"
        "int xdp_unchecked(struct xdp_md *ctx) { return *(__u32 *)(long)ctx->data; }\n"
    )
    program = loader.compile_program(source)
    try:
        with pytest.raises(EdgesimError) as caught:
            loader.load_xdp(program, "xdp_unchecked")
    finally:
        program.cleanup()
    text = str(caught.value)
    assert "the kernel rejected the XDP program" in text
    assert "invalid access to packet" in text


def test_a_compile_error_comes_back_from_the_compiler_process(cache_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int xdp_broken(struct xdp_md *ctx) { return XDP_PASS }\n")
    with pytest.raises(EdgesimError) as caught:
        loader.compile_program(source)
    assert "bcc could not compile this program" in str(caught.value)
    assert f"{source}:1:" in str(caught.value)
    assert cache.entries(cache_dir) in (
        [],
        [cache.digest(loader.translation_unit(source), [f"-I{loader.BPF_DIR}"])],
    )
    assert not any(cache_dir.glob("*/image.json"))


def test_clearing_removes_only_the_caches_entries(cache_dir: Path, source: Path, programs: list[Any]) -> None:
    compiled(source, programs)
    compiled(source, programs, XDP_DROP)
    (cache_dir / "notes.txt").write_text("not ours\n")
    (cache_dir / "not-a-digest").mkdir()
    removed = cache.clear(cache_dir)
    assert len(removed) == 2
    assert sorted(p.name for p in cache_dir.iterdir()) == ["not-a-digest", "notes.txt"]
    os.remove(cache_dir / "notes.txt")
    (cache_dir / "not-a-digest").rmdir()
    assert cache.clear(cache_dir) == []
    assert not cache_dir.exists()
