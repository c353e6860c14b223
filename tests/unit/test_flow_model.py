"""Call flow model, validation messages and the flow file loader."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.calls.models import CallRequest
from app.ivr.flow import (
    CallFlow,
    CallFlowStep,
    FlowFileError,
    StepType,
    flow_error_lines,
    load_flow_file,
    load_flows_dir,
    normalize_phone_number,
)

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"

VALID = {
    "id": "sample-co",
    "name": "Sample Co",
    "company": "Sample Co",
    "phone_number": "5550100",
    "steps": [
        {"id": "menu", "type": "LISTEN", "dtmf": "2", "timeout": 25, "conditions": {"on_hold": "hold"}},
        {"id": "press", "type": "DTMF", "dtmf": "1"},
        {"id": "hold", "type": "HOLD", "conditions": {"on_human": "transfer"}},
        {"id": "transfer", "type": "TRANSFER", "metadata": {"device": "sip_phone"}},
    ],
}


def with_changes(change) -> dict:
    data = copy.deepcopy(VALID)
    change(data)
    return data


def errors_of(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        CallFlow.model_validate(data)
    return flow_error_lines(caught.value)


def walk(flow: CallFlow) -> list[CallFlowStep]:
    steps, step = [], flow.first_step
    while step is not None:
        steps.append(step)
        step = flow.next_of(step)
    return steps


# ---------------------------------------------------------------------------- the shipped flows


def test_shipped_flows_load_without_errors():
    flows, errors = load_flows_dir(FLOWS_DIR)
    assert errors == []
    # Each shipped file is named after the flow it holds.
    assert {flow.id for flow in flows} == {path.stem for path in FLOWS_DIR.glob("*.yaml")}
    assert {"acme-bank", "test-menu"} <= {flow.id for flow in flows}


def test_acme_bank_flow_presses_2_then_1_then_holds_and_transfers():
    flow = load_flow_file(FLOWS_DIR / "acme-bank.yaml")
    assert (flow.company, flow.phone_number) == ("Acme Bank", "8005550100")
    main_menu = flow.first_step
    assert main_menu.type is StepType.LISTEN
    assert main_menu.metadata["prompt_contains"] == "customer advocate"
    assert main_menu.timeout is not None and main_menu.timeout > 20  # the main menu prompt lasts ~20 s
    steps = walk(flow)
    assert [s.dtmf for s in steps if s.dtmf] == ["2", "1"]
    assert [s.type for s in steps][-2:] == [StepType.HOLD, StepType.TRANSFER]
    hold = steps[-2]
    assert hold.timeout is None  # the session's MAX_HOLD_TIME applies
    assert steps[-1].metadata["device"] == "sip_phone"


def test_test_menu_flow_is_for_the_test_company():
    flow = load_flow_file(FLOWS_DIR / "test-menu.yaml")
    assert flow.phone_number == "5550001"
    steps = walk(flow)
    assert [s.dtmf for s in steps if s.dtmf] == ["2", "1"]
    assert steps[-1].type is StepType.TRANSFER


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["steps"][1].pop("dtmf"), "steps[1].dtmf: a DTMF step needs the digits to send"),
        (lambda d: d["steps"][1].update(dtmf="12x"), "steps[1].dtmf: only digits 0-9 * # A-D"),
        (lambda d: d["steps"][1].update(dtmf="ww"), "steps[1].dtmf: has no digit, only pauses"),
        (lambda d: d["steps"][1].update(dtmf=1), 'steps[1].dtmf: write dtmf as a quoted string (e.g. "1")'),
        (lambda d: d["steps"][2].update(dtmf="5"), "steps[2].dtmf: a HOLD step sends no digits"),
        (lambda d: d["steps"][1].update(timeout=3), "steps[1].timeout: a DTMF step has no timeout"),
        (lambda d: d["steps"][3].update(timeout=10), "steps[3].timeout: a TRANSFER step has no timeout"),
        (lambda d: d["steps"][0].update(timeout=0), "steps[0].timeout: Input should be greater than 0"),
        (lambda d: d["steps"][0].update(type="PRESS"), "steps[0].type: Input should be"),
        (lambda d: d["steps"][0].update(nxt="hold"), "steps[0].nxt: Extra inputs are not permitted"),
        (lambda d: d["steps"][1].update(next_step="nowhere"), "steps[1].next_step: 'nowhere' is not a step id"),
        (lambda d: d["steps"][1].update(next_step="press"), "steps[1].next_step: a step cannot be followed by itself"),
        (lambda d: d["steps"][2]["conditions"].update(on_human="agent"), "steps[2].conditions.on_human: 'agent' is not a step id"),
        (lambda d: d["steps"][0]["conditions"].update(on_answer="hold"), "steps[0].conditions.on_answer: unknown condition"),
        (lambda d: d["steps"][2].update(id="menu"), "steps[2].id: duplicate step id 'menu' (also steps[0])"),
        (lambda d: d["steps"].insert(0, {"id": "hello", "type": "SPEAK"}), "steps[0].metadata.text: a SPEAK step needs"),
        (lambda d: d["steps"][3].update(next_step="hold"), "steps[3].next_step: a TRANSFER step ends the flow"),
        (lambda d: d["steps"].append({"id": "again", "type": "TRANSFER"}), "steps[4].type: a flow hands the call over once"),
        (lambda d: d["steps"][3].update(metadata={"device": ""}), "steps[3].metadata.device: must be the name"),
        (lambda d: d.update(steps=[]), "steps: List should have at least 1 item"),
        (lambda d: d.update(phone_number="call me"), "phone_number: must be a phone number"),
        (lambda d: d.update(phone_number=5550100), "phone_number: write phone_number as a quoted string"),
        (lambda d: d.update(id="Sample Co"), "id: must be a slug"),
        (lambda d: d.pop("name"), "name: Field required"),
    ],
)
def test_validation_errors_name_the_field(change, expected):
    lines = errors_of(with_changes(change))
    assert any(line.startswith(expected) for line in lines), lines


def test_every_cross_reference_problem_is_reported_at_once():
    def break_twice(d):
        d["steps"][0]["next_step"] = "a"
        d["steps"][1]["conditions"] = {"on_failure": "b"}

    lines = errors_of(with_changes(break_twice))
    assert [line.split(":")[0] for line in lines] == ["steps[0].next_step", "steps[1].conditions.on_failure"]


def test_valid_flow_normalises_values():
    flow = CallFlow.model_validate(
        with_changes(lambda d: (d.update(phone_number="(555) 010-0"), d["steps"][1].update(type="dtmf", dtmf="1w2W#")))
    )
    assert flow.phone_number == "5550100"
    assert flow.steps[1].type is StepType.DTMF and flow.steps[1].dtmf == "1w2W#"
    assert flow.created_at.tzinfo is not None and flow.updated_at.utcoffset().total_seconds() == 0


def test_speak_accepts_text_or_a_recording():
    for metadata in ({"text": "My account number is 1234"}, {"audio": "prompt:one-moment-please"}):
        step = CallFlowStep(id="say", type=StepType.SPEAK, metadata=metadata)
        assert step.metadata == metadata


@pytest.mark.parametrize("raw", ["(800) 555-0100", "+1 800.555.0100", "5550001", "800 555 0100 #"])
def test_phone_numbers_normalise_exactly_like_call_requests(raw):
    assert normalize_phone_number(raw) == CallRequest(number=raw).number


def test_navigation_helpers():
    flow = CallFlow.model_validate(
        with_changes(lambda d: d["steps"][0].update(next_step="hold"))
    )
    assert flow.first_step.id == "menu"
    assert flow.next_of(flow.step("menu")).id == "hold"  # explicit next_step
    assert flow.next_of(flow.step("press")).id == "hold"  # the following step
    assert flow.next_of(flow.step("transfer")) is None
    with pytest.raises(KeyError, match="no step 'missing'"):
        flow.step("missing")


def test_last_step_without_transfer_ends_the_flow():
    flow = CallFlow.model_validate(
        {"id": "x", "name": "x", "phone_number": "12", "steps": [{"id": "w", "type": "WAIT", "timeout": 1}]}
    )
    assert flow.next_of(flow.first_step) is None


# ---------------------------------------------------------------------------- files


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_syntax_error_names_path_and_line(tmp_path):
    path = write(tmp_path / "broken.yaml", "id: broken\nname: Broken\nsteps:\n  - id: a\n    type: [DTMF\n")
    with pytest.raises(FlowFileError) as caught:
        load_flow_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: YAML syntax error at line ")
    assert caught.value.path == path
    line = int(message.split("at line ")[1].split(",")[0])
    assert 5 <= line <= 6


def test_json_syntax_error_names_path_and_line(tmp_path):
    path = write(tmp_path / "broken.json", '{\n  "id": "broken",\n  "name": \n}\n')
    with pytest.raises(FlowFileError, match=r"broken\.json: JSON syntax error at line 4, column 1"):
        load_flow_file(path)


def test_invalid_flow_in_a_file_names_path_line_and_field(tmp_path):
    text = (
        "id: sample-co\n"  # 1
        "name: Sample\n"  # 2
        'phone_number: "5550100"\n'  # 3
        "steps:\n"  # 4
        "  - id: menu\n"  # 5
        "    type: LISTEN\n"  # 6
        "    timeout: 20\n"  # 7
        "  - id: press\n"  # 8
        "    type: DTMF\n"  # 9
        "    dtmf: 12x\n"  # 10
        "    next_step: menu\n"  # 11
    )
    path = write(tmp_path / "sample.yaml", text)
    with pytest.raises(FlowFileError) as caught:
        load_flow_file(path)
    assert str(caught.value) == (
        f"{path}: invalid call flow: line 10: steps[1].dtmf: "
        "only digits 0-9 * # A-D and the pauses w (0.5 s) and W (1 s) are allowed"
    )


def test_cross_reference_error_in_a_file_points_at_its_line(tmp_path):
    text = 'id: x\nname: X\nphone_number: "12"\nsteps:\n  - id: a\n    type: WAIT\n    next_step: b\n'
    path = write(tmp_path / "x.yml", text)
    with pytest.raises(FlowFileError, match=r"line 7: steps\[0\]\.next_step: 'b' is not a step id"):
        load_flow_file(path)


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("empty.yaml", "", "the file is empty"),
        ("list.yaml", "- a\n- b\n", "the top level must be a mapping of flow fields, not a list"),
        ("flow.txt", "id: x", "not a flow file"),
    ],
)
def test_unusable_files_say_why(tmp_path, name, text, reason):
    path = write(tmp_path / name, text)
    with pytest.raises(FlowFileError) as caught:
        load_flow_file(path)
    assert str(caught.value).startswith(f"{path}: {reason}")


def test_json_flow_round_trips(tmp_path):
    flow = CallFlow.model_validate(VALID)
    path = write(tmp_path / "sample.json", flow.model_dump_json(indent=2))
    assert load_flow_file(path) == flow


def test_directory_load_keeps_good_flows_and_reports_every_bad_file(tmp_path):
    good = CallFlow.model_validate(VALID)
    write(tmp_path / "a-good.json", good.model_dump_json())
    write(tmp_path / "b-bad-syntax.yaml", "id: [\n")
    write(tmp_path / "c-bad-flow.yaml", json.dumps({**VALID, "id": "other", "steps": []}))
    write(tmp_path / "d-same-id.yml", json.dumps(VALID))
    write(tmp_path / "notes.md", "not a flow")

    flows, errors = load_flows_dir(tmp_path)

    assert flows == [good]
    assert [error.path.name for error in errors] == ["b-bad-syntax.yaml", "c-bad-flow.yaml", "d-same-id.yml"]
    assert "YAML syntax error" in errors[0].reason
    assert "steps: List should have at least 1 item" in errors[1].reason
    assert "flow id 'sample-co' is already defined in" in errors[2].reason and "a-good.json" in errors[2].reason


def test_missing_directory_is_an_error_not_a_crash(tmp_path):
    flows, errors = load_flows_dir(tmp_path / "nope")
    assert flows == [] and len(errors) == 1
    assert str(errors[0]) == f"{tmp_path / 'nope'}: not a directory"
