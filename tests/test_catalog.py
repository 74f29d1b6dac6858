"""The mode catalog's fidelity notes describe each mode as it is built (issue: the notes
of calico/bgp said "Policy on" with policy off, and weave's caveat was said twice)."""

from __future__ import annotations

from cnilab.lab.datapaths import datapath_for, implemented_modes
from cnilab.lab.plan import make_plan
from cnilab.modes import catalog, get_mode


def test_policy_notes_only_with_policy_on() -> None:
    for cni, modes in catalog().items():
        for mode in modes.values():
            assert "Policy on" not in mode.fidelity_for(False), mode.key
            if True in mode.policy_options and mode.lab_implemented and cni != "cilium":
                assert mode.fidelity_policy, f"{mode.key}: policy on is built; say how"
    bgp = get_mode("calico", "bgp")
    assert bgp.fidelity_for(True).startswith(bgp.fidelity)
    assert "cali-FORWARD" in bgp.fidelity_for(True) and "cali-FORWARD" not in bgp.fidelity


def test_no_note_repeats_the_catalog() -> None:
    for cni, mode in implemented_modes():
        plan = make_plan(cni, mode)
        catalog_text = plan.mode_info.fidelity_for(True).lower()
        for note in datapath_for(plan).notes():
            words = [w for w in note.lower().replace(";", " ").split() if len(w) > 6]
            shared = [w for w in words if w in catalog_text]
            assert len(shared) < max(3, len(words) // 2), (plan.mode_info.key, note)
