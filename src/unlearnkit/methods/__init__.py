"""Unlearning methods: forget objectives and regularizers composed by name ("ME+GD", "IDK+AP").

Importing this package registers every part in ``FORGET_OBJECTIVES`` / ``REGULARIZERS`` and
every composable name in ``METHODS``.
"""

from unlearnkit.methods import ap, dpo, ga, gd, idk, kl, me, npo  # noqa: F401  (registration)
from unlearnkit.methods.base import VIEWS, Part, StepContext
from unlearnkit.methods.compose import (
    Method,
    Term,
    _register_methods,
    build_method,
    canonical_name,
    paper_defaults,
    parse_method_name,
)
from unlearnkit.methods.data import (
    QADataset,
    UnlearningCollator,
    UnlearningDataset,
    attach_reference_nlls,
    compute_reference_nlls,
)

_register_methods()

__all__ = [
    "VIEWS",
    "Method",
    "Part",
    "QADataset",
    "StepContext",
    "Term",
    "UnlearningCollator",
    "UnlearningDataset",
    "attach_reference_nlls",
    "build_method",
    "canonical_name",
    "compute_reference_nlls",
    "paper_defaults",
    "parse_method_name",
]
