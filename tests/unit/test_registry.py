import pytest

from unlearnkit.registry import Registry


def test_register_get_and_errors():
    reg: Registry = Registry("method")

    @reg.register("NPO", description="negative preference optimization")
    def npo():
        return 1

    assert reg.get("NPO") is npo
    assert reg.get("npo") is npo  # case-insensitive lookup
    assert reg.names() == ["NPO"]
    assert reg.describe() == {"NPO": "negative preference optimization"}
    with pytest.raises(ValueError, match="already registered"):
        reg.add("NPO", npo)
    with pytest.raises(
        ValueError, match=r"unknown method 'NPX' \(did you mean 'NPO'\?\); choose from NPO"
    ):
        reg.get("NPX")
