#!/usr/bin/python3
"""Reference values for GrowthBook's hash (src/core/growthbook.cpp), from an independent implementation.

Run from the repository root:  python3 test/reference/growthbook_hash.py
It rewrites test/reference/growthbook_hash.tsv, which test/unit/growthbook_test.cpp checks row by row.

The SDK hashes JavaScript strings: FNV-1a 32-bit over UTF-16 code units. Here a string's code units
come from Python's own UTF-16 encoder, and bytes that are not valid UTF-8 from Python's decoder with
errors="replace" (one U+FFFD per maximal ill-formed subsequence, as TextDecoder does). Seed and value
decode separately, as they are separate strings before the SDK concatenates them.

Columns: seed and value as hex of their bytes (so that tabs, newlines and invalid UTF-8 survive),
the hash version, the hash ("none" where the SDK returns null) as Python's shortest round-trip
repr, and FNV-1a 32-bit of the value alone.
"""
import os
import random

FNV_OFFSET_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193
ROWS = 2000


def fnv1a32(text: str) -> int:
    units = text.encode("utf-16-le")
    h = FNV_OFFSET_BASIS
    for i in range(0, len(units), 2):
        h ^= units[i] | (units[i + 1] << 8)
        h = (h * FNV_PRIME) % 2**32
    return h


def js_string(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def growthbook_hash(seed: bytes, value: bytes, version: int):
    s, v = js_string(seed), js_string(value)
    if version == 2:
        return (fnv1a32(str(fnv1a32(s + v))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(v + s) % 1000) / 1000
    return None


# Code point pools, none holding surrogates (UTF-8 cannot carry them).
POOLS = {
    "ascii": [(0x20, 0x7E)],
    "control": [(0x00, 0x1F), (0x7F, 0x7F)],
    "latin1": [(0xA0, 0xFF)],
    "scripts": [(0x0370, 0x03FF), (0x0400, 0x04FF), (0x05D0, 0x05EA), (0x0600, 0x06FF), (0x0900, 0x097F)],
    "cjk": [(0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3)],
    "bmp_high": [(0xE000, 0xFFFF)],
    "emoji": [(0x1F300, 0x1FAFF)],
    "astral": [(0x10000, 0x10FFFF)],
    "digits": [(0x30, 0x39)],
}

# Byte sequences a UTF-8 decoder must replace: lone continuations, bytes never valid, truncated
# sequences, overlong forms, encoded surrogates and code points above U+10FFFF.
INVALID_PIECES = [
    b"\x80", b"\xbf", b"\xc0", b"\xc1", b"\xf5", b"\xff", b"\xfe",
    b"\xc3", b"\xe3\x81", b"\xf0\x9f\x98", b"\xe0\x80\x80", b"\xc0\xaf", b"\xf0\x80\x80\x80",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc",
]


def random_text(rng: random.Random, pool_names, length: int) -> str:
    ranges = [r for name in pool_names for r in POOLS[name]]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(length))


def random_bytes(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.06:
        return b""
    if kind < 0.07:  # long
        return random_text(rng, rng.sample(sorted(POOLS), 3), rng.randint(200, 1500)).encode()
    if kind < 0.18:  # invalid UTF-8 among valid characters
        parts = []
        for _ in range(rng.randint(1, 5)):
            parts.append(rng.choice(INVALID_PIECES) if rng.random() < 0.5
                         else random_text(rng, [rng.choice(sorted(POOLS))], rng.randint(0, 3)).encode())
        return b"".join(parts)
    if kind < 0.5:  # one pool
        return random_text(rng, [rng.choice(sorted(POOLS))], rng.randint(1, 24)).encode()
    return random_text(rng, rng.sample(sorted(POOLS), rng.randint(2, 4)), rng.randint(1, 24)).encode()


def main() -> None:
    rng = random.Random(20240917)
    rows = []
    # The SDK specification's own cases first, so a broken table shows at once.
    for seed, value, version in [("", "a", 1), ("b", "a", 1), ("seed", "a", 2), ("foo", "ab", 2), ("abc", "def", 99)]:
        rows.append((seed.encode(), value.encode(), version))
    rows.append((b"checkout", random_text(rng, ["ascii"], 5000).encode(), 2))
    rows.append((random_text(rng, ["emoji"], 2000).encode(), b"user42", 1))
    while len(rows) < ROWS:
        version = rng.choice([1, 2] * 24 + [0, 3, -1, 99])
        rows.append((random_bytes(rng), random_bytes(rng), version))

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "growthbook_hash.tsv")
    with open(path, "w", encoding="ascii", newline="\n") as out:
        out.write("# Written by test/reference/growthbook_hash.py; do not edit.\n")
        out.write("# seed_hex\tvalue_hex\tversion\thash\tfnv1a32_of_value\n")
        for seed, value, version in rows:
            h = growthbook_hash(seed, value, version)
            out.write(f"{seed.hex()}\t{value.hex()}\t{version}\t{'none' if h is None else repr(h)}\t"
                      f"{fnv1a32(js_string(value))}\n")


if __name__ == "__main__":
    main()
