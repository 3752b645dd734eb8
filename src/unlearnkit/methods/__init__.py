"""Unlearning methods: forget objectives and regularizers composed by name ("ME+GD", "IDK+AP").

Importing this package registers every part in ``FORGET_OBJECTIVES`` / ``REGULARIZERS`` and
every composable name in ``METHODS``.
"""

from unlearnkit.methods import (  # noqa: F401  (registration)
    altpo,
    ap,
    ceu,
    dpo,
    ga,
    gd,
    idk,
    kl,
    me,
    npo,
    pdu,
    rmu,
    satimp,
    simnpo,
    undial,
    wga,
)
from unlearnkit.methods.base import Part, StepContext
from unlearnkit.methods.compose import (
    RECIPES,
    Method,
    Term,
    _register_methods,
    build_method,
    canonical_name,
    default_learning_rate,
    paper_defaults,
    parse_method_name,
    select_trainable,
)
from unlearnkit.methods.data import (
    QADataset,
    UnlearningCollator,
    UnlearningDataset,
    attach_reference_nlls,
    compute_reference_nlls,
)
from unlearnkit.methods.views import VIEWS, View, register_view, unregister_view

_register_methods()

__all__ = [
    "RECIPES",
    "VIEWS",
    "Method",
    "Part",
    "QADataset",
    "StepContext",
    "Term",
    "UnlearningCollator",
    "UnlearningDataset",
    "View",
    "attach_reference_nlls",
    "build_method",
    "canonical_name",
    "compute_reference_nlls",
    "default_learning_rate",
    "paper_defaults",
    "parse_method_name",
    "register_view",
    "select_trainable",
    "unregister_view",
]
