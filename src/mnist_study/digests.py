"""What a verified copy of MNIST is: the four arrays, their sizes and SHA-256 digests, the check.

``MNIST_784`` holds the digests of OpenML's ``mnist_784`` as the book splits it (the first 60,000
images for training, the last 10,000 for testing); ``TEST_FIXTURE`` those of the small committed
test fixture. This is the one place they are written; every source's arrays pass ``verify``
before the loader keeps them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

ARRAY_NAMES = ("X_train", "X_test", "y_train", "y_test")
Arrays = dict[str, np.ndarray]


class SourceError(Exception):
    """A source, a file or a copy of the data was not usable; the message says why."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a verified copy of a dataset looks like: its sizes and the SHA-256 of each array."""

    name: str
    n_train: int
    n_test: int
    sha256: dict[str, str] = field(repr=False)

    def rows(self, name: str) -> int:
        """How many images or labels the array ``name`` (``X_train``, ``y_test``…) holds."""
        return self.n_train if name.endswith("train") else self.n_test

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of the array ``name``: ``(n, 784)`` for images, ``(n,)`` for labels."""
        return (self.rows(name), 784) if name[0] == "X" else (self.rows(name),)


MNIST_784 = DatasetSpec(
    name="MNIST (OpenML mnist_784)",
    n_train=60_000,
    n_test=10_000,
    sha256={
        "X_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "X_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
)
# tests/fixtures/mnist_784_fixture.npz: stratified_subset(MNIST, n_train=2000, n_test=500, seed=42).
TEST_FIXTURE = DatasetSpec(
    name="MNIST test fixture (2,000 + 500 images)",
    n_train=2_000,
    n_test=500,
    sha256={
        "X_train": "4926380c774d7bf6e2632a2d49b1df525a8d3f223ca5a8f9bb3cfe95af068c8c",
        "X_test": "74892eeb07d6b0726b06631a243a7dd3dda440f289b2bedb9e34e17076ab50ed",
        "y_train": "24332d30e5af9e5ecb190e75dba515a9215659573017347cfd77fd11908de088",
        "y_test": "1cc0f08c009be28ae109d67e6a67b8e5200768feec3449de04756de00ec114b3",
    },
)


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's raw bytes in C order."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(array)).cast("B")).hexdigest()


def verify(arrays: Arrays, spec: DatasetSpec) -> Arrays:
    """The four arrays of ``spec`` (C-ordered uint8), or ``SourceError`` saying which differs."""
    verified = {}
    for name in ARRAY_NAMES:
        shape = spec.shape(name)
        if name not in arrays:
            raise SourceError(f"{name} is missing")
        array = verified[name] = np.ascontiguousarray(arrays[name])
        digest = array_sha256(array)
        if (array.dtype, array.shape, digest) != (np.uint8, shape, spec.sha256[name]):
            raise SourceError(
                f"SHA-256 of {name} ({array.dtype} {array.shape}) is {digest[:16]}…, "
                f"expected uint8 {shape} {spec.sha256[name][:16]}… (not this dataset)"
            )
    return verified
