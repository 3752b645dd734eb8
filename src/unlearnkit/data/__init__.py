"""Data layer: QA records, loaders, benchmark splits, prompt formatting and collators."""

from unlearnkit.data.loaders import DataError, load_qa_file, load_refusals
from unlearnkit.data.records import QAItem

__all__ = ["DataError", "QAItem", "load_qa_file", "load_refusals"]
