#!/usr/bin/python3
"""Reference values for the assignment hash, from an independent xxHash implementation.

Run with Debian's interpreter (python3-xxhash):  /usr/bin/python3 test/reference/hash_vectors.py
Its output is what test/unit/hashing_test.cpp and the README's table must agree with.
"""
import xxhash

CASES = [
    ("checkout_v2", "user42"),
    ("checkout_v2", "user1"),
    ("pricing", "user42"),
    ("checkout_v2", ""),
    ("checkout_v2", "ユーザー"),
    ("checkout_v2", "12345"),
]


def bucket(salt: str, user_id: str) -> tuple[int, int, int]:
    seed = xxhash.xxh3_64_intdigest(salt.encode())
    value = xxhash.xxh3_64_intdigest(user_id.encode(), seed=seed)
    return seed, value, value % 10000


if __name__ == "__main__":
    for salt, user_id in CASES:
        seed, value, b = bucket(salt, user_id)
        coverage = xxhash.xxh3_64_intdigest(user_id.encode(), seed=xxhash.xxh3_64_intdigest((salt + ":coverage").encode())) % 10000
        print(f'{{"{salt}", "{user_id}", {seed}ULL, {value}ULL, {b}, {coverage}}},')
