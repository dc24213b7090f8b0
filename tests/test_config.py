import pytest

from miad.config import apply_overrides, load_config_file, parse_set_values
from miad.errors import ConfigError
from miad.registry import create, make_config


def test_parse_set_values_json_then_string():
    got = parse_set_values(["max_train_images=null", "betas=[0.5,0.999]", "anomaly_source=/data/dtd", "lr=1e-3"])
    assert got == {"max_train_images": None, "betas": [0.5, 0.999], "anomaly_source": "/data/dtd", "lr": 1e-3}
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_values(["novalue"])


def test_overrides_are_type_checked_and_coerced():
    cfg = make_config("ref_ae", "quick", betas=[0.5, 0.999], lr=1, max_train_images=None)
    assert cfg.betas == (0.5, 0.999) and isinstance(cfg.lr, float) and cfg.max_train_images is None
    with pytest.raises(ConfigError, match="valid keys: .*image_size"):
        make_config("ref_ae", "quick", no_such_key=1)
    with pytest.raises(ConfigError, match="wrong type"):
        make_config("ref_ae", "quick", epochs="many")
    with pytest.raises(ConfigError, match="wrong type"):
        make_config("ref_ae", "quick", epochs=True)


def test_invalid_values_and_unknown_names_list_valid_ones():
    with pytest.raises(ConfigError, match="image_size"):
        make_config("ref_ae", "quick", image_size=0)
    with pytest.raises(ConfigError, match="valid methods: .*ref_ae"):
        create("no_such_method")
    with pytest.raises(ConfigError, match="valid presets: quick, paper"):
        create("ref_ae", "fast")


def test_config_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 0.01\nbetas: [0.5, 0.9]\n")
    cfg = apply_overrides(make_config("ref_ae"), load_config_file(f))
    assert cfg.lr == 0.01 and cfg.betas == (0.5, 0.9)
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "missing.yaml")
