"""A BPF image's checks (without a kernel): what a cache entry must satisfy before it is loaded, the cache
key's inputs, and bcc's type descriptions turned into the same ctypes layouts bcc builds."""

from __future__ import annotations

import ctypes
import struct

import pytest

from edgesim.bpf import cache, maptables
from edgesim.bpf.image import Function, Image, ImageError, MapSpec

EXIT = struct.pack("<BBhi", 0x95, 0, 0, 0)


def ld_map(fd: int, src: int = 1) -> bytes:
    """ld_imm64 r1, map fd: two slots, the source register field saying what the immediate is."""
    return struct.pack("<BBhi", 0x18, 1 | src << 4, 0, fd) + struct.pack("<BBhi", 0, 0, 0, 0)


SPEC = MapSpec("counts", 2, 4, 8, 4, 0, "unsigned int", "unsigned long long")


def image(insns: bytes, refs: tuple[tuple[int, str], ...], maps: tuple[MapSpec, ...] = (SPEC,)) -> Image:
    return Image("GPL", 0, maps, {"xdp_f": Function(insns, refs)})


def test_an_image_round_trips_through_json() -> None:
    original = image(ld_map(7) + EXIT, ((0, "counts"),))
    assert Image.from_json(original.to_json()) == original


@pytest.mark.parametrize(
    ("insns", "refs", "reason"),
    [
        (ld_map(7) + EXIT, (), "do not match"),  # a map load the image does not say which map it is
        (EXIT + EXIT, ((0, "counts"),), "do not match"),  # a reference where no map is loaded
        (ld_map(7) + EXIT, ((0, "other"),), "names no map"),
        (ld_map(7, src=2) + EXIT, ((0, "counts"),), "pseudo load of kind 2"),  # a map value: not carried
        (ld_map(7)[:8], ((0, "counts"),), "cut off"),
        (EXIT[:5], (), "bad name or instructions"),
        (struct.pack("<BBhi", 0x85, 1 << 4, 0, 3) + EXIT, (), "calls a BPF function"),
    ],
    ids=["unnamed-load", "no-load", "unknown-map", "map-value", "cut-off", "partial-insn", "bpf-call"],
)
def test_an_image_whose_parts_do_not_fit_is_refused(
    insns: bytes, refs: tuple[tuple[int, str], ...], reason: str
) -> None:
    with pytest.raises(ImageError, match=reason):
        image(insns, refs).check()


@pytest.mark.parametrize(
    "spec",
    [
        MapSpec("../x", 2, 4, 8, 4, 0, "int", "int"),
        MapSpec("counts", -1, 4, 8, 4, 0, "int", "int"),
        MapSpec("counts", 2, 4, 8, 1 << 32, 0, "int", "int"),
        MapSpec("counts", 2, 4, 8, 4, 0, "no such type", "int"),
        MapSpec("counts", 2, 4, 8, 4, 0, "int", ["s", [["a"]]]),
    ],
    ids=["name", "type", "entries", "key-type", "leaf-type"],
)
def test_a_bad_map_spec_is_refused(spec: MapSpec) -> None:
    with pytest.raises(ImageError):
        image(EXIT, (), (spec,)).check()


def test_a_json_that_is_not_an_image_is_an_image_error() -> None:
    for data in ({}, {"format": 2}, {"format": 1, "maps": "x"}, []):
        with pytest.raises(ImageError):
            Image.from_json(data)


def test_the_cache_key_covers_text_flags_and_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    key = cache.digest("int x;", ["-DA=1"])
    assert len(key) == 64 and key == cache.digest("int x;", ["-DA=1"])
    assert key != cache.digest("int y;", ["-DA=1"])
    assert key != cache.digest("int x;", ["-DA=2"])
    assert key != cache.digest("int x;", ["-DA=1", "-DB=1"])
    monkeypatch.setattr("os.uname", lambda: type("U", (), {"release": "0.0-other"})())
    assert key != cache.digest("int x;", ["-DA=1"])


def test_the_cache_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESIM_BPF_CACHE", raising=False)
    assert cache.enabled()
    monkeypatch.setenv("EDGESIM_BPF_CACHE", "off")
    assert not cache.enabled()


def test_bcc_descriptions_become_bccs_layouts() -> None:
    desc = [
        "flow",
        [
            ["addr", "unsigned int"],
            ["port", "unsigned short"],
            ["mac", "unsigned char", [6]],
            ["flag", "unsigned int", 3],
            ["", [["a", "int"], ["b", "unsigned int"]], "union"],
        ],
        "struct",
    ]
    flow = maptables.ctype(desc)
    assert issubclass(flow, ctypes.Structure)
    assert [name for name, *_ in flow._fields_] == ["addr", "port", "mac", "flag", "__anon0"]
    value = flow(addr=1, port=2, mac=(1, 2, 3, 4, 5, 6), flag=5)
    value.a = -1
    assert (value.flag, value.b, tuple(value.mac)) == (5, 0xFFFFFFFF, (1, 2, 3, 4, 5, 6))
    packed = maptables.ctype(["p", [["a", "unsigned char"], ["b", "unsigned int"]], "struct_packed"])
    assert ctypes.sizeof(packed) == 5


def test_clearing_an_absent_cache_is_nothing(tmp_path: pytest.TempPathFactory) -> None:
    assert cache.clear(tmp_path / "none") == []  # type: ignore[operator]
