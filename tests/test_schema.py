"""The wire is declared once: each dict the engine builds has a TypedDict in ``schema.py``
beside its pydantic model, and the two must not drift apart."""

from __future__ import annotations

import typing

import orjson
import pytest
import typing_extensions

from chainlens import schema
from chainlens.engine import run_wire
from chainlens.examples.catalog import examples

#: Each model and the TypedDict the engine's fast path builds for it.
PAIRS = [
    (schema.Stats, schema.StatsDict),
    (schema.TensorView, schema.TensorViewDict),
    (schema.Variable, schema.VariableDict),
    (schema.Node, schema.NodeDict),
    (schema.ElementLine, schema.ElementLineDict),
    (schema.CustomCheck, schema.CustomCheckDict),
    (schema.RuleFormula, schema.RuleFormulaDict),
    (schema.JacobianFormula, schema.JacobianFormulaDict),
    (schema.AccumulateFormula, schema.AccumulateFormulaDict),
    (schema.CustomFormula, schema.CustomFormulaDict),
    (schema.NoFormula, schema.NoFormulaDict),
    (schema.Step, schema.StepDict),
    (schema.Pass, schema.PassDict),
    (schema.CutEdge, schema.CutEdgeDict),
    (schema.Run, schema.RunDict),
]


@pytest.mark.parametrize(("model", "declared"), PAIRS, ids=lambda x: x.__name__)
def test_each_model_and_its_dict_declare_the_same_fields(model, declared) -> None:
    assert list(typing.get_type_hints(declared)) == list(model.model_fields), (
        f"{declared.__name__} and {model.__name__} declare different fields, or in another order"
    )
    # every key is always sent (null where there is nothing), so none is optional
    assert declared.__optional_keys__ == frozenset()


def test_every_dict_the_engine_builds_is_declared_by_pairs() -> None:
    dicts = {
        name
        for name, obj in vars(schema).items()
        if typing_extensions.is_typeddict(obj)
        and getattr(obj, "__module__", "") == schema.__name__
        and name.endswith("Dict")
    }
    unpaired = dicts - {declared.__name__ for _, declared in PAIRS}
    # the Pass's Jacobian is a plain dict in the model too (scripts index it)
    assert unpaired == {"FormulaBaseDict", "JacobianLeafDict", "PassJacobianDict"}


@pytest.mark.parametrize("example", examples(), ids=lambda e: e.id)
def test_the_model_reads_back_exactly_what_the_engine_sent(example) -> None:
    """A key the engine sends but the schema does not declare would vanish in the model's
    dump; a declared one the engine forgot would appear as its default."""
    wire = orjson.loads(orjson.dumps(run_wire(example.source)))
    assert schema.Run.model_validate(wire).model_dump(mode="json") == wire
