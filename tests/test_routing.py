"""Pure routing decisions: windows to the second, chains, referral hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from common.facts import E164, jst_day, parse_instant
from routing import ConfigError, load_routing

ROUTING = load_routing()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_window_opens_at_its_start_to_the_second() -> None:
    """A caller at 09:59:59 hears 'closed'; one at 10:00:00 reaches the menu."""
    assert ROUTING.window_at(at("2025-05-02T09:59:59+09:00")) is None
    opened = ROUTING.window_at(at("2025-05-02T10:00:00+09:00"))
    assert opened is not None and opened.id == "gw-2025"


def test_window_is_closed_at_its_end() -> None:
    """The last second of GW 2025 is open; the closing instant is not."""
    last = ROUTING.window_at(at("2025-05-07T09:59:59+09:00"))
    assert last is not None and last.id == "gw-2025"
    assert ROUTING.window_at(at("2025-05-07T10:00:00+09:00")) is None


def test_window_check_holds_for_a_utc_instant() -> None:
    """The server may run in UTC: 01:00Z is 10:00 JST, the opening instant."""
    opened = ROUTING.window_at(dt.datetime(2025, 5, 2, 1, 0, tzinfo=dt.UTC))
    assert opened is not None and opened.id == "gw-2025"
    assert ROUTING.window_at(dt.datetime(2025, 5, 2, 0, 59, 59, tzinfo=dt.UTC)) is None


def test_next_window_after_the_last_gw_is_the_provisional_new_year() -> None:
    """Outside the windows the caller is told the next opening; in late 2026 that is the provisional New Year."""
    nxt = ROUTING.next_window(at("2026-11-23T12:00:00+09:00"))
    assert nxt is not None and (nxt.id, nxt.status) == ("newyear-2026", "provisional")
    assert ROUTING.next_window(at("2027-01-05T00:00:00+09:00")) is None


@pytest.mark.parametrize(("option", "kind", "partner"), [
    ("general", "queue", "tsunagari"), ("under18", "queue", "kodomo"), ("foreign", "queue", "worldbridge"),
    ("gender", "queue", "niji"), ("women", "queue", "sakura"), ("disaster", "phone", "hinata"),
])
def test_each_option_goes_to_its_partner(option: str, kind: str, partner: str) -> None:
    """Inside a window each option reaches the partner assigned to it."""
    d = ROUTING.decide(at("2025-05-03T03:00:00+09:00"), option)
    assert (d.kind, d.partner.id if d.partner else None) == (kind, partner)


def test_chain_falls_to_the_general_line_then_referrals() -> None:
    """An option whose partner cannot answer goes to the general line, then to the referral lines open now."""
    instant = at("2025-05-03T03:00:00+09:00")
    steps = [ROUTING.decide(instant, "women", s) for s in range(4)]
    assert [(d.kind, d.partner.id if d.partner else None) for d in steps] == [
        ("queue", "sakura"), ("queue", "tsunagari"), ("queue", "aozora"), ("referrals", None)]
    assert [r.id for r in steps[3].referrals] == ["dv-plus", "yorisoi"]


def test_unknown_option_is_treated_as_general() -> None:
    """A tampered or stale option id still reaches a person: the general line."""
    d = ROUTING.decide(at("2025-05-03T03:00:00+09:00"), "no-such-option")
    assert (d.option, d.partner.id if d.partner else None) == ("general", "tsunagari")


def test_childline_is_not_offered_between_12_29_and_1_3() -> None:
    """An under-18 caller on 12/30 at 17:00 hears the 24-hour children's line, not Childline (closed then)."""
    late_dec = ROUTING.open_referrals(at("2026-12-30T17:00:00+09:00"), "under18")
    assert [r.id for r in late_dec] == ["kodomo-sos", "yorisoi"]
    december = ROUTING.open_referrals(at("2026-12-28T17:00:00+09:00"), "under18", limit=3)
    assert [r.id for r in december] == ["kodomo-sos", "childline", "yorisoi"]
    jan4 = ROUTING.open_referrals(at("2027-01-04T16:00:00+09:00"), "under18", limit=3)
    assert "childline" in [r.id for r in jan4]


def test_referral_hours_follow_the_clock_to_the_minute() -> None:
    """いのちの電話 opens at 16:00 and closes at 21:00; on the 10th it runs 08:00 to 08:00 the next day."""
    def ids(text: str) -> list[str]:
        return [r.id for r in ROUTING.open_referrals(at(text), "general", limit=5)]

    assert "inochi" not in ids("2026-11-23T15:59:00+09:00")
    assert "inochi" in ids("2026-11-23T16:00:00+09:00")
    assert "inochi" not in ids("2026-11-23T21:00:00+09:00")
    assert "inochi" in ids("2026-12-10T08:00:00+09:00")
    assert "inochi" in ids("2026-12-11T07:59:00+09:00")
    assert "inochi" not in ids("2026-12-11T08:00:00+09:00")


def test_inochi_sos_hours_depend_on_the_weekday() -> None:
    """#いのちSOS runs 24 h on Monday and 06:00-24:00 on Tuesday."""
    def ids(text: str) -> list[str]:
        return [r.id for r in ROUTING.open_referrals(at(text), "general", limit=5)]

    assert "inochi-sos" in ids("2026-11-23T03:00:00+09:00")  # Monday
    assert "inochi-sos" not in ids("2026-11-24T03:00:00+09:00")  # Tuesday
    assert "inochi-sos" in ids("2026-11-24T06:00:00+09:00")


def test_closed_decision_carries_next_window_and_open_lines() -> None:
    """Outside every window the decision is 'closed' with the next window and lines open right now."""
    d = ROUTING.decide(at("2025-05-02T09:59:59+09:00"), "general")
    assert d.kind == "closed"
    assert d.next_campaign is not None and d.next_campaign.id == "gw-2025"
    assert [r.id for r in d.referrals] == ["inochi-sos", "yorisoi"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def shipped_with(replace: str, by: str) -> str:
    text = (Path(__file__).parents[1] / "routing" / "routing.yaml").read_text(encoding="utf-8")
    assert replace in text
    return text.replace(replace, by, 1)


def test_a_call_counts_toward_the_jst_day() -> None:
    """A call at 23:59:59 JST counts toward that day's figures and one a second later toward the next (UTC is 9h behind)."""
    assert jst_day(at("2025-05-02T14:59:59+00:00")) == "2025-05-02"
    assert jst_day(at("2025-05-02T15:00:00+00:00")) == "2025-05-03"
    assert jst_day(at("2025-05-03T00:00:00+09:00")) == "2025-05-03"
    with pytest.raises(ValueError) as e:
        jst_day(at("2025-05-03T00:00:00"))
    assert str(e.value) == "2025-05-03T00:00:00 has no zone; give an aware instant"


def test_phone_numbers_must_be_e164() -> None:
    """A partner's or counsellor's number Twilio cannot dial, or a withheld caller, is not taken for a number."""
    accepted = ["+815000000001", "+819012345678", "+12025550123", "+1234567"]
    refused = ["0120-279-338", "815000000001", "+0815000000001", "+81 90 1234 5678", "+123456", "+1234567890123456",
               "anonymous", "", "+819012345678\n"]
    assert [n for n in accepted + refused if E164.fullmatch(n)] == accepted


def test_instants_need_their_zone() -> None:
    """An operator's --at or IVR_CLOCK without a zone is refused rather than read in the server's zone."""
    assert parse_instant(" 2025-05-02T15:00:00Z ") == at("2025-05-03T00:00:00+09:00")
    with pytest.raises(ValueError) as e:
        parse_instant("2025-05-03T00:00:00")
    assert str(e.value) == "'2025-05-03T00:00:00' has no zone; write it with one, e.g. 2025-05-03T00:00:00+09:00 for JST"
    with pytest.raises(ValueError) as e:
        parse_instant("May 3rd")
    assert str(e.value) == "'May 3rd' is not an ISO-8601 instant; write e.g. 2025-05-03T03:00:00+09:00"


def test_error_names_file_path_and_allowed_values(tmp_path: Path) -> None:
    """An operator with a typo is told the file, the YAML path and what is allowed."""
    path = write(tmp_path, shipped_with("kind: phone", "kind: fax"))
    with pytest.raises(ConfigError) as e:
        load_routing(path)
    assert str(e.value) == f"{path}: partners[6].kind: Input should be 'queue' or 'phone'"


def test_time_without_zone_is_refused(tmp_path: Path) -> None:
    """A window written without +09:00 would be read in the server's zone: refused."""
    path = write(tmp_path, shipped_with("opens: 2025-05-02T10:00:00+09:00", "opens: 2025-05-02T10:00:00"))
    with pytest.raises(ConfigError) as e:
        load_routing(path)
    assert str(e.value).startswith(f"{path}: campaigns[4].opens: Input should have timezone info")


def test_unknown_key_unknown_partner_and_overlap_are_reported(tmp_path: Path) -> None:
    """Several mistakes are reported together, each with its own path."""
    text = shipped_with("      shifts: [{partner: sakura, from: \"00:00\", to: \"24:00\"}]\n      referrals: [dv-plus, yorisoi]\n"
                        "    disaster:\n      shifts: [{partner: hinata, from: \"00:00\", to: \"24:00\"}]\n\n  # The July",
                        "      shifts: [{partner: sakura, from: \"00:00\", to: \"24:00\"}]\n      overflow: [nobody]\n"
                        "      referrals: [dv-plus, yorisoi]\n    disaster:\n"
                        "      shifts: [{partner: hinata, from: \"00:00\", to: \"24:00\"}]\n\n  # The July")
    text = text.replace("closes: 2024-01-04T09:00:00+09:00", "closes: 2024-05-03T09:00:00+09:00")
    text = text.replace("    ring_timeout: 25", "    ring_timeout: 25\n    colour: red")
    with pytest.raises(ConfigError) as e:
        load_routing(write(tmp_path, text))
    lines = [p.path + ": " + p.message for p in e.value.problems]
    assert lines == ["partners[6].colour: unknown key (not allowed here)"]
    text = text.replace("    colour: red\n", "")
    with pytest.raises(ConfigError) as e:
        load_routing(write(tmp_path, text))
    lines = [p.path + ": " + p.message for p in e.value.problems]
    assert lines == [
        "plans.default.women.overflow[0]: unknown partner id 'nobody'; allowed: tsunagari, aozora, kodomo, "
        "worldbridge, niji, sakura, hinata, yorube, hinagiku, or option:<id>",
        "campaigns[3].opens: window of 'gw-2024' overlaps 'newyear-2023' (which closes 2024-05-03T09:00:00+09:00)",
    ]


def test_window_ending_before_it_opens_is_refused(tmp_path: Path) -> None:
    """A window whose end is not after its start is a typo, not an empty campaign."""
    path = write(tmp_path, shipped_with("closes: 2025-05-07T10:00:00+09:00", "closes: 2025-05-02T10:00:00+09:00"))
    with pytest.raises(ConfigError) as e:
        load_routing(path)
    assert "campaigns[4]: Value error, 'closes' (2025-05-02T10:00:00+09:00) must be after 'opens'" in str(e.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A broken YAML file is reported with its line, never as a stack trace."""
    path = write(tmp_path, "campaigns: [\n  - id: x\n")
    with pytest.raises(ConfigError) as e:
        load_routing(path)
    assert str(e.value).startswith(f"{path}: line ")
    assert "YAML syntax error" in str(e.value)


@pytest.mark.parametrize(("old", "new", "problem"), [
    ('    number: "0120-99-7777"\n', "", "referrals[3]: Value error, a referral of kind 'phone' needs 'number' (as "
     "callers dial it, e.g. 0120-279-338)"),
    ("    kind: chat\n", '    kind: chat\n    number: "0120-000-000"\n', "referrals[7]: Value error, a referral of "
     "kind 'chat' has no 'number' (callers are told numbers only for phone lines): remove it, or make the line kind "
     "'phone'"),
    ('    number: "0120-99-7777"\n', '    number: "0120-99-7777"\n    url: https://childline.or.jp/\n',
     "referrals[3]: Value error, 'url' is for chat and mail lines; a phone line is reached by its 'number'"),
    ("url: https://talkme.jp/", "url: http://talkme.jp/", "referrals[7].url: Value error, 'http://talkme.jp/' is not "
     "an https address; write it as callers open it, e.g. https://talkme.jp/"),
])
def test_referral_lines_say_how_they_are_reached(tmp_path: Path, old: str, new: str, problem: str) -> None:
    """A phone line with no number, a chat line with one, a phone line with a web address, or an address that is
    not https: refused with the file, the path and what to do."""
    path = write(tmp_path, shipped_with(old, new))
    with pytest.raises(ConfigError) as e:
        load_routing(path)
    assert str(e.value) == f"{path}: {problem}"


def test_chat_and_mail_lines_are_shipped_with_their_source() -> None:
    """The chat and mail consultations carry a kind, an https address, a source and the date they were checked."""
    online = [(r.id, r.kind, r.number, r.url, r.checked.isoformat()) for r in ROUTING.spec.referrals if r.online]
    assert online == [("ibasho", "chat", None, "https://talkme.jp/", "2026-11-30"),
                      ("inochi-mail", "mail", None, "https://www.inochinodenwa.org/", "2026-11-30")]
    languages = {"zh", "ko", "vi", "pt", "es", "fil", "id", "th", "ne", "easy"}
    assert [set(r.names) for r in ROUTING.spec.referrals if r.online] == [languages, languages]


def test_online_lines_are_the_chat_and_mail_ones_open_now() -> None:
    """At 03:00 in the New Year window a caller can be pointed to あなたのいばしょ's chat, in a window or not."""
    night = at("2026-12-27T03:00:00+09:00")
    assert [r.name for r in ROUTING.online_referrals(night, "women")] == ["あなたのいばしょ"]
    assert [r.id for r in ROUTING.online_referrals(night, "general")] == ["ibasho", "inochi-mail"]
    assert [r.id for r in ROUTING.online_referrals(night, "general", limit=1)] == ["ibasho"]
    assert [r.id for r in ROUTING.online_referrals(at("2026-11-24T03:00:00+09:00"), "under18")] == ["ibasho"]


def test_phone_lines_are_never_chat_lines() -> None:
    """Callers are told numbers at the end of the chain: a chat line in the option's set is never among them."""
    evening = at("2026-12-27T17:00:00+09:00")
    campaign = ROUTING.window_at(evening)
    assert campaign is not None
    assert [r.id for r in ROUTING.open_referrals(evening, "general", limit=10, campaign=campaign)] == [
        "yorisoi", "inochi", "inochi-sos"]
    d = ROUTING.decide(evening, "general", 9)
    assert (d.kind, [r.id for r in d.referrals]) == ("referrals", ["yorisoi", "inochi"])


def test_the_language_option_is_kept_open_by_the_interpreter() -> None:
    """At 03:00 on 12/27 the foreign-language partner is off shift, but the interpreter keeps the option in the menu."""
    night = at("2026-12-27T03:00:00+09:00")
    assert ROUTING.offered(night) == frozenset({"general", "women", "disaster"})
    assert ROUTING.offered(night, "foreign") == frozenset({"general", "women", "disaster", "foreign"})
    assert ROUTING.offered(at("2026-11-24T03:00:00+09:00"), "foreign") == frozenset()


def test_a_thai_caller_reaches_the_interpreter_and_an_english_one_the_partner() -> None:
    """A Thai caller at 03:00 goes to aozora through its interpreter; an English caller at 10:00 to worldbridge."""
    thai = ROUTING.decide(at("2026-12-27T03:00:00+09:00"), "foreign", 0, "th")
    assert (thai.kind, thai.partner.id if thai.partner else None, thai.interpreter) == ("queue", "aozora", True)
    english = ROUTING.decide(at("2026-12-27T10:00:00+09:00"), "foreign", 0, "en")
    assert (english.kind, english.partner.id if english.partner else None, english.interpreter) == (
        "queue", "worldbridge", False)
    japanese = ROUTING.decide(at("2026-12-27T03:00:00+09:00"), "foreign", 0)
    assert (japanese.partner.id if japanese.partner else None, japanese.interpreter) == ("tsunagari", False)


def test_urgent_option_of_the_open_campaign() -> None:
    """In the 2022 trial the 'suicidal' option is the urgent one; Golden Week 2025 and a closed line have none."""
    assert ROUTING.urgent_option(at("2022-07-08T03:00:00+09:00")) == "suicidal"
    assert ROUTING.urgent_option(at("2025-05-03T03:00:00+09:00")) is None
    assert ROUTING.urgent_option(at("2026-11-24T03:00:00+09:00")) is None


def test_a_caller_in_crisis_is_on_the_urgent_lane() -> None:
    """decide(urgent=True) puts any option's caller on the urgent lane; an urgent option does so by itself."""
    instant = at("2025-05-03T03:00:00+09:00")
    plain, crisis = ROUTING.decide(instant, "women"), ROUTING.decide(instant, "women", urgent=True)
    assert [(d.partner.id if d.partner else None, d.urgent) for d in (plain, crisis)] == [
        ("sakura", False), ("sakura", True)]
    trial = ROUTING.decide(at("2022-07-08T03:00:00+09:00"), "suicidal")
    assert (trial.partner.id if trial.partner else None, trial.urgent) == ("yorube", True)
    assert ROUTING.decide(instant, "women", 9, urgent=True).urgent is True

