"""Recipe validation: every mistake names the field, what is allowed, and what was given."""

from pathlib import Path

import pytest

from edgecnn.config import RecipeError, load_recipe, parse_recipe

REPO = Path(__file__).resolve().parents[1]
VALID = {
    "name": "t",
    "data": {"source": "builtin", "path": "digits", "image_size": 16},
    "model": {"name": "tiny_cnn"},
}


def recipe_with(section: str, **values) -> dict:
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in VALID.items()}
    raw.setdefault(section, {}).update(values)
    return raw


def error_of(raw: dict) -> str:
    with pytest.raises(RecipeError) as info:
        parse_recipe(raw)
    return str(info.value)


def test_mistyped_key_is_named_with_suggestion():
    message = error_of(recipe_with("train", optimiser="adam"))
    assert "train.optimiser: unknown key — did you mean 'optimizer'?" in message
    assert "allowed: " in message


def test_mistyped_top_level_section():
    assert "augmentation: unknown key — did you mean 'augment'?" in error_of({**VALID, "augmentation": {}})


def test_wrong_type_and_range_name_field_and_value():
    message = error_of(recipe_with("train", epochs=0, batch_size="big"))
    assert "train.epochs: Input should be greater than or equal to 1 (got 0)" in message
    assert "train.batch_size:" in message and "'big'" in message


def test_unknown_model_suggests_close_names():
    message = error_of(recipe_with("model", name="mobilenet_v2x"))
    assert "model.name: unknown model 'mobilenet_v2x'. Did you mean 'mobilenet_v2'" in message


def test_unsupported_export_precision():
    message = error_of(recipe_with("export", targets=[{"format": "tflite", "precision": "int4"}]))
    expected = (
        "export.targets.0: format 'tflite' supports precisions float32, float16, dynamic, int8, int16x8; got 'int4'"
    )
    assert expected in message


def test_fractions_must_leave_training_data():
    assert "val_fraction + test_fraction must leave training data" in error_of(
        recipe_with("data", val_fraction=0.5, test_fraction=0.45)
    )


def test_yaml_file_errors(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="expected a mapping at the top level, got list"):
        load_recipe(listing)


def test_overrides_and_defaults(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: t\ndata: {source: builtin, path: digits}\nmodel: {name: tiny_cnn}\n")
    recipe = load_recipe(path, {"train.epochs": 3, "data.image_size": 16})
    assert (recipe.train.epochs, recipe.data.image_size, recipe.train.optimizer) == (3, 16, "adam")
    assert [(t.format, t.precision) for t in recipe.export.targets] == [("tflite", "float32"), ("tflite", "int8")]
    assert "epochs: 3" in recipe.to_yaml()


@pytest.mark.parametrize("path", sorted((REPO / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    load_recipe(path)


def test_qat_section_errors_name_the_field():
    message = error_of(recipe_with("qat", enable=True, learning_rate=0, epochs="many"))
    assert "qat.enable: unknown key — did you mean 'enabled'?" in message
    assert "qat.learning_rate: Input should be greater than 0 (got 0)" in message
    assert "qat.epochs:" in message and "'many'" in message


def test_qat_is_off_unless_enabled():
    assert parse_recipe(VALID).qat.enabled is False
    qat = parse_recipe(recipe_with("qat", enabled=True)).qat
    assert (qat.enabled, qat.epochs, qat.learning_rate) == (True, 3, 1e-4)
