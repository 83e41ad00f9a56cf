"""corebpf.kernel_image on small inputs built here, plus the shipped Debian BTF files."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import re
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from corebpf import kernel_image as ki
from tests.conftest import DATA, debian_files

# --- builders ----------------------------------------------------------------------------

SHT_PROGBITS, SHT_STRTAB, SHT_NOBITS = 1, 3, 8


def make_elf(
    sections: list[tuple[str, int, bytes]], *, is64: bool = True, endian: str = "<"
) -> bytes:
    """An ELF relocatable with a null section, ``sections`` and a .shstrtab last."""
    names = b"\0"
    offsets = []
    for name, _, _ in [*sections, (".shstrtab", 0, b"")]:
        offsets.append(len(names))
        names += name.encode() + b"\0"
    ehsize = 64 if is64 else 52
    shdr = struct.Struct(endian + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII"))
    body = b""
    headers = [shdr.pack(*[0] * 10)]
    for (_, sh_type, data), name_off in zip(sections, offsets, strict=False):
        off = ehsize + len(body)
        headers.append(shdr.pack(name_off, sh_type, 0, 0, off, len(data), 0, 0, 1, 0))
        if sh_type != SHT_NOBITS:
            body += data
    off = ehsize + len(body)
    headers.append(shdr.pack(offsets[-1], SHT_STRTAB, 0, 0, off, len(names), 0, 0, 1, 0))
    body += names
    shoff = ehsize + len(body)
    shnum = len(headers)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if endian == "<" else 2, 1]) + bytes(9)
    if is64:
        rest = struct.pack(endian + "HHIQQQIHHHHHH", 1, 247, 1, 0, 0, shoff, 0, ehsize, 0, 0,
                           shdr.size, shnum, shnum - 1)
    else:
        rest = struct.pack(endian + "HHIIIIIHHHHHH", 1, 247, 1, 0, 0, shoff, 0, ehsize, 0, 0,
                           shdr.size, shnum, shnum - 1)
    return ident + rest + body + b"".join(headers)


BTF_BLOB = b"\x9f\xeb\x01\x00" + bytes(range(60))
ELF = make_elf([(".text", SHT_PROGBITS, b"\x90" * 32), (".BTF", SHT_PROGBITS, BTF_BLOB),
                (".bss", SHT_NOBITS, b"\0" * 16)])


def fake_bzimage(payload: bytes, *, header: bool = True, prefix: bytes = b"") -> bytes:
    """A bzImage-shaped blob: 1 setup sector + boot sector, then ``prefix`` + payload + the
    4-byte length the kernel appends. The boot header points at the payload if asked."""
    image = bytearray(1024)
    image[0x1F1] = 1  # setup_sects: protected-mode code starts at (1 + 1) * 512
    if header:
        image[0x202:0x206] = b"HdrS"
        struct.pack_into("<H", image, 0x206, 0x20F)
        struct.pack_into("<II", image, 0x248, len(prefix), len(payload) + 4)
    return bytes(image) + prefix + payload + struct.pack("<I", len(ELF))


def lz4_literals(data: bytes) -> bytes:
    """An LZ4 block holding ``data`` as one literal run (valid, if uncompressed)."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    extra = n - 15
    return b"\xf0" + b"\xff" * (extra // 255) + bytes([extra % 255]) + data


def lz4_legacy(*blocks: bytes) -> bytes:
    return b"\x02\x21\x4c\x18" + b"".join(struct.pack("<I", len(b)) + b for b in blocks)


def make_ar(members: list[tuple[str, bytes]]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        if len(data) & 1:
            out += b"\n"
    return out


def make_tar(files: dict[str, bytes], mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_deb(vmlinuz: bytes, data_ext: str = "xz") -> bytes:
    control = b"Package: linux-image-test\nVersion: 1.2-3\nDescription: test\n two lines\n"
    data_mode = {"xz": "w:xz", "gz": "w:gz", "bz2": "w:bz2", "": "w"}[data_ext]
    files = {"./boot/config-6.0.0-test": b"CONFIG_X=y\n", "./boot/vmlinuz-6.0.0-test": vmlinuz,
             "./lib/modules/6.0.0-test/modules.dep": b""}
    return make_ar([
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", make_tar({"./control": control}, "w:gz")),
        ("data.tar" + ("." + data_ext if data_ext else ""), make_tar(files, data_mode)),
    ])


# --- ELF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("is64", [True, False], ids=["elf64", "elf32"])
@pytest.mark.parametrize("endian", ["<", ">"], ids=["le", "be"])
def test_elf_section_all_classes_and_byte_orders(is64: bool, endian: str) -> None:
    elf = make_elf([(".text", SHT_PROGBITS, b"\xcc" * 5), (".BTF", SHT_PROGBITS, BTF_BLOB),
                    (".bss", SHT_NOBITS, b"")], is64=is64, endian=endian)
    assert ki.elf_section(elf, ".BTF") == BTF_BLOB
    assert ki.elf_section(elf, ".text") == b"\xcc" * 5
    assert ki.elf_section(elf, ".bss") == b""  # NOBITS: no file bytes
    assert ki.elf_section(elf, ".BTF.ext") is None
    assert ki.elf_section(elf, ".BT") is None  # whole names only


def test_elf_without_section_table() -> None:
    elf = bytearray(ELF)
    struct.pack_into("<Q", elf, 0x28, 0)
    assert ki.elf_section(bytes(elf), ".BTF") is None


def test_elf_extended_section_count_and_name_index() -> None:
    elf = bytearray(ELF)
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shnum, shstrndx = struct.unpack_from("<HH", elf, 0x3C)
    struct.pack_into("<HH", elf, 0x3C, 0, 0xFFFF)  # real values live in section 0
    struct.pack_into("<Q", elf, shoff + 0x20, shnum)  # sh_size
    struct.pack_into("<I", elf, shoff + 0x28, shstrndx)  # sh_link
    assert ki.elf_section(bytes(elf), ".BTF") == BTF_BLOB


def _patched(offset: int, fmt: str, value: int) -> bytes:
    elf = bytearray(ELF)
    struct.pack_into(fmt, elf, offset, value)
    return bytes(elf)


SHOFF = struct.unpack_from("<Q", ELF, 0x28)[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x7fEL", r"offset 0x0: ELF identification"),
        (b"MZ" + bytes(100), r"offset 0x0: not an ELF"),
        (ELF[:4] + b"\x03" + ELF[5:], r"offset 0x4: bad ELF class 3"),
        (ELF[:5] + b"\x00" + ELF[6:], r"offset 0x5: bad ELF data encoding"),
        (ELF[:40], r"offset 0x0: ELF64 header"),
        (_patched(0x28, "<Q", len(ELF) - 8), r"offset 0x[0-9a-f]+: section header"),
        (_patched(0x3C, "<H", 200), r"section header table"),
        (_patched(0x3A, "<H", 10), r"section header size 10"),
        (_patched(0x3E, "<H", 0), r"name table index 0 out of range"),
        (_patched(SHOFF + 2 * 64 + 0x18, "<Q", 1 << 40), r"offset 0x10000000000: section '.BTF'"),
        (_patched(SHOFF + 2 * 64, "<I", 10_000), r"name offset 10000 is past"),
        (ELF[: SHOFF - 1] + ELF[SHOFF:], r"offset 0x[0-9a-f]+:"),
    ],
    ids=["short", "magic", "class", "data", "header", "shoff", "shnum", "shentsize",
         "shstrndx", "section-past-end", "name-past-table", "shifted"],
)
def test_elf_malformed_names_offset(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ki.elf_section(data, ".BTF")


def test_elf_every_truncation_fails_cleanly() -> None:
    for n in range(len(ELF)):
        try:
            ki.elf_section(ELF[:n], ".BTF")
        except ValueError as exc:
            assert "offset" in str(exc)


# --- compressed kernel images ------------------------------------------------------------

PACKERS = {
    "gzip": lambda b: gzip.compress(b, mtime=0),
    "xz": lambda b: lzma.compress(b, check=lzma.CHECK_CRC32),
    "bzip2": bz2.compress,
    # like the kernel's `lzma -9`: a 64 MiB dictionary, whose header gives the 5d 00 00 00
    # magic extract-vmlinux (and the scan) looks for
    "lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE,
                                    filters=[{"id": lzma.FILTER_LZMA1, "preset": 9}]),
    "lz4": lambda b: lz4_legacy(lz4_literals(b)),
}
# False magics in front of the payload: each must be tried and rejected.
JUNK = b"junk\x1f\x8b\x08\x00 more \xfd7zXZ\x00 BZh9 \x5d\x00\x00\x00\x02\x21\x4c\x18" * 3


@pytest.mark.parametrize("fmt", sorted(PACKERS))
@pytest.mark.parametrize("header", [True, False], ids=["boot-header", "magic-scan"])
def test_extract_vmlinux(fmt: str, header: bool) -> None:
    image = fake_bzimage(PACKERS[fmt](ELF), header=header, prefix=JUNK)
    assert ki.extract_vmlinux(image) == ELF
    if header:
        assert ki.image_compression(image) == fmt
    else:
        assert ki.image_compression(image) is None


def test_extract_vmlinux_skips_a_valid_stream_that_is_not_elf() -> None:
    image = fake_bzimage(gzip.compress(b"not an elf" * 10) + b"pad" + lzma.compress(ELF),
                         header=False)
    assert ki.extract_vmlinux(image) == ELF


def test_extract_vmlinux_passes_elf_through() -> None:
    assert ki.extract_vmlinux(ELF) == ELF


def test_extract_vmlinux_without_payload() -> None:
    with pytest.raises(ValueError, match="no compressed ELF vmlinux"):
        ki.extract_vmlinux(fake_bzimage(b"plain bytes", prefix=JUNK))


def test_extract_vmlinux_truncated_payload_is_not_accepted() -> None:
    packed = lzma.compress(ELF * 50)
    with pytest.raises(ValueError, match="no compressed ELF vmlinux"):
        ki.extract_vmlinux(fake_bzimage(packed[: len(packed) // 2], header=False))


def test_extract_vmlinux_output_is_bounded() -> None:
    image = fake_bzimage(gzip.compress(ELF + bytes(4 << 20)))
    with pytest.raises(ValueError, match="more than 1048576 bytes"):
        ki.extract_vmlinux(image, limit=1 << 20)
    assert len(ki.extract_vmlinux(image, limit=8 << 20)) == len(ELF) + (4 << 20)


def test_decompress_bomb_is_refused() -> None:
    for fmt in ("gzip", "xz", "bzip2"):
        with pytest.raises(ValueError, match="more than"):
            ki.decompress(PACKERS[fmt](bytes(3 << 20)), fmt, limit=1 << 20)


def test_decompress_corrupt() -> None:
    packed = bytearray(gzip.compress(b"x" * 1000))
    packed[12] ^= 0xFF
    with pytest.raises(ValueError, match="corrupt gzip"):
        ki.decompress(bytes(packed), "gzip")


def test_lzo_is_named() -> None:
    with pytest.raises(ValueError, match="lzo"):
        ki.extract_vmlinux(fake_bzimage(b"\x89LZO\x00\r\n\x1a\n" + bytes(64)))


def test_zstd_without_decoder_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_module(name: str) -> object:
        raise ImportError(name)

    monkeypatch.setattr(ki.importlib, "import_module", no_module)
    image = fake_bzimage(b"\x28\xb5\x2f\xfd" + bytes(64))
    with pytest.raises(ValueError, match="zstandard"):
        ki.extract_vmlinux(image)
    with pytest.raises(ValueError, match="zstandard"):  # found by the scan alone, too
        ki.extract_vmlinux(fake_bzimage(b"\x28\xb5\x2f\xfd" + bytes(64), header=False))


def test_zstd_payload() -> None:
    zstandard = pytest.importorskip("zstandard")
    packed = zstandard.ZstdCompressor(level=3).compress(ELF)
    for header in (True, False):
        assert ki.extract_vmlinux(fake_bzimage(packed, header=header, prefix=JUNK)) == ELF
    with pytest.raises(ValueError, match="more than"):
        ki.decompress(zstandard.ZstdCompressor().compress(bytes(3 << 20)), "zstd", 1 << 20)


# --- LZ4 ---------------------------------------------------------------------------------


def test_lz4_block_sequences() -> None:
    # "abc", then a 9-byte match at distance 3 (overlapping: repeats), then "xyz".
    block = b"\x35abc\x03\x00" + b"\x30xyz"
    assert ki.lz4_block(block) == b"abc" + b"abcabcabc" + b"xyz"
    # A 300-byte match at distance 1 (length nibble 15 + extension bytes).
    block = b"\x1fa\x01\x00" + bytes([255, 300 - 19 - 255]) + b"\x10z"
    assert ki.lz4_block(block) == b"a" * 301 + b"z"
    assert ki.lz4_block(lz4_literals(b"q" * 1000)) == b"q" * 1000


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (b"", "no token"),
        (b"\x50ab", "run past"),
        (b"\x10a\x00\x00\x00", "bad match distance 0"),
        (b"\x10a\x05\x00\x00", "bad match distance 5"),
        (b"\x10a\x01", "truncated match offset"),
        (b"\xf0\xff", "truncated literal length"),
        (b"\x1fa\x01\x00\xff", "truncated match length"),
    ],
)
def test_lz4_block_malformed(block: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ki.lz4_block(block)


def test_lz4_block_output_is_bounded() -> None:
    with pytest.raises(ValueError, match="more than 100"):
        ki.lz4_block(b"\x1fa\x01\x00" + b"\xff" * 4 + b"\x00\x10z", max_out=100)


@pytest.mark.skipif(shutil.which("lz4") is None, reason="no lz4 command")
def test_lz4_legacy_frames_from_the_lz4_tool(tmp_path: Path) -> None:
    # > 8 MiB, so two legacy blocks: short matches in the text, then long ones (quick to
    # decode in pure Python) in the repeated pseudo-random tail.
    text = b"".join(b"line %d of some text, %s\n" % (i, b"ab" * (i % 7)) for i in range(5000))
    noise = hashlib.shake_256(b"corebpf").digest(64 << 10)
    data = text + noise * 130
    src = tmp_path / "in"
    src.write_bytes(data)
    subprocess.run(["lz4", "-q", "-l", "-12", "-f", str(src), str(tmp_path / "out")],
                   check=True)
    packed = (tmp_path / "out").read_bytes()
    assert ki.decompress(packed + b"\x01\x02\x03\x04", "lz4") == data  # multi-block


# --- ar and .deb -------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["xz", "gz", "bz2", ""])
def test_deb_vmlinuz_and_control(ext: str) -> None:
    deb = make_deb(b"KERNEL", ext)
    assert next(iter(ki.deb_members(deb))) == "debian-binary"
    assert ki.deb_vmlinuz(deb) == ("6.0.0-test", b"KERNEL")
    control = ki.deb_control(deb)
    assert control["Package"] == "linux-image-test"
    assert control["Version"] == "1.2-3"
    assert control["Description"] == "test\ntwo lines"


def test_deb_without_vmlinuz() -> None:
    deb = make_ar([("debian-binary", b"2.0\n"),
                   ("data.tar.xz", make_tar({"./etc/x": b"1"}, "w:xz"))])
    with pytest.raises(ValueError, match="no boot/vmlinuz"):
        ki.deb_vmlinuz(deb)
    with pytest.raises(ValueError, match=r"no control.tar.\* member"):
        ki.deb_control(deb)


def test_not_a_deb() -> None:
    with pytest.raises(ValueError, match="not a Debian binary package"):
        ki.deb_members(make_ar([("data.tar", b""), ("debian-binary", b"2.0\n")]))
    with pytest.raises(ValueError, match="bad tar"):
        ki.deb_vmlinuz(make_ar([("debian-binary", b"2.0\n"),
                                ("data.tar.gz", gzip.compress(b"not a tar" * 100))]))


def test_ar_variants() -> None:
    long_name = "a-very-long-member-name.txt"
    gnu = (b"!<arch>\n"
           + b"//              0           0     0     644     30        `\n"
           + (long_name + "/\n").encode() + b"x\n"
           + b"/0              0           0     0     644     3         `\nabc\n")
    assert ki.ar_members(gnu) == {long_name: b"abc"}
    bsd = (b"!<arch>\n" + b"#1/27           0           0     0     644     30        `\n"
           + long_name.encode() + b"xyz")
    assert ki.ar_members(bsd) == {long_name: b"xyz"}
    assert ki.ar_members(make_ar([("odd/", b"1"), ("even", b"22")])) == {"odd": b"1",
                                                                         "even": b"22"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"!<arch\n", r"offset 0x0: not an ar"),
        (b"!<arch>\nshort", r"offset 0x8: truncated"),
        (make_ar([("a", b"12")])[:-1], r"offset 0x8: ar member of 2 bytes runs past"),
        (make_ar([("a", b"12")]).replace(b"`\n", b"xx"), r"offset 0x42: bad ar member header"),
        (make_ar([("a", b"12")]).replace(b"2         `", b"-2        `"), "bad ar member size"),
        (make_ar([("a", b"1"), ("a", b"2")]), "duplicate ar member 'a'"),
    ],
)
def test_ar_malformed(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ki.ar_members(data)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="no dpkg-deb")
def test_deb_built_by_dpkg_deb(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: corebpf-test\nVersion: 0.1\nArchitecture: all\nMaintainer: t <t@t>\n"
        "Description: test\n")
    (root / "boot").mkdir()
    image = fake_bzimage(lzma.compress(ELF))
    (root / "boot" / "vmlinuz-9.9.9-test").write_bytes(image)
    subprocess.run(["dpkg-deb", "-Zxz", "--build", "--root-owner-group", str(root),
                    str(tmp_path / "t.deb")], check=True, capture_output=True)
    deb = (tmp_path / "t.deb").read_bytes()
    assert ki.deb_control(deb)["Package"] == "corebpf-test"
    release, vmlinuz = ki.deb_vmlinuz(deb)
    assert (release, vmlinuz) == ("9.9.9-test", image)
    assert ki.elf_section(ki.extract_vmlinux(vmlinuz), ".BTF") == BTF_BLOB


# --- the shipped Debian BTF --------------------------------------------------------------


def test_debian_btf_files_are_present() -> None:
    assert debian_files(), "tests/data/btf/*.btf.xz is missing"


@pytest.mark.parametrize("path", debian_files(), ids=lambda p: p.name)
def test_debian_btf_decompresses_to_btf(path: Path) -> None:
    raw = lzma.decompress(path.read_bytes())
    assert raw[:2] == b"\x9f\xeb"  # 0xeB9F, little endian
    _magic, version, _flags, hdr_len, _t_off, _t_len, str_off, str_len = struct.unpack_from(
        "<HBBIIIII", raw)
    assert version == 1
    assert hdr_len + str_off + str_len == len(raw)
    # SOURCES.md records the raw size and hash of exactly this file.
    sources = (DATA / "btf" / "SOURCES.md").read_text()
    row = re.search(rf"^\| {re.escape(path.name)} \|.*$", sources, re.M)
    assert row is not None, f"{path.name} is not listed in SOURCES.md"
    assert hashlib.sha256(raw).hexdigest() in row.group(0)
    assert f"| {len(raw)} | {path.stat().st_size} |" in row.group(0)
