"""The key layout: one module, one hash tag per session, validated ids."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory.keys import ID_PATTERN, InvalidIdError, Keys, validate_id

valid_ids = st.from_regex(ID_PATTERN, fullmatch=True)


@given(user=valid_ids, session=valid_ids)
def test_all_session_keys_share_one_hash_tag(user, session):
    keys = Keys("memlab").session(user, session)
    tags = {re.search(r"\{([^}]*)\}", k).group(1) for k in keys.all()}  # type: ignore[union-attr]
    assert tags == {f"{user}:{session}"}
    assert len(set(keys.all())) == len(keys.all())
    assert Keys("memlab").parse(keys.buffer) == {"user_id": user, "session_id": session, "kind": "buffer"}


@given(st.text(max_size=80))
def test_ids_outside_the_pattern_are_rejected_with_a_clear_error(value):
    if ID_PATTERN.fullmatch(value):
        assert validate_id("user", value) == value
    else:
        with pytest.raises(InvalidIdError, match="not valid"):
            validate_id("user", value)


@pytest.mark.parametrize(
    "bad", ["", "a" * 65, "a:b", "a{b}", "a b", "*", "-start", "é", None, 5, "alice\n", "alice\r\n", "al\nice"]
)
def test_known_bad_ids(bad):
    with pytest.raises(InvalidIdError):
        Keys().session(bad, "s1")


def test_user_pattern_does_not_match_other_users():
    keys = Keys("memlab")
    pattern = keys.user_session_pattern("al")
    import fnmatch

    assert fnmatch.fnmatchcase(keys.session("al", "s1").log, pattern)
    assert not fnmatch.fnmatchcase(keys.session("alice", "s1").log, pattern)


def test_a_users_key_pattern_finds_all_their_keys_and_no_one_elses(raw_redis):
    """SCAN with the pattern the key browser opens on: the user's session and user keys, not a user whose id
    starts the same, nor keys outside Memory Lab's prefix."""
    keys = Keys("memlab")
    mine = [keys.session("al", "s1").log, keys.session("al", "s2").meta, keys.user("al").fact_log]
    others = [keys.session("alice", "s1").log, keys.user("alice").fact_log, keys.session("bo", "al").log, "al:x"]
    for name in mine + others:
        raw_redis.set(name, "1")
    found = {k.decode() for k in raw_redis.scan_iter(match=keys.user_keys_pattern("al"), count=1000)}
    assert found == set(mine)
    assert keys.user_keys_pattern("al\n") == keys.user_keys_pattern(None) == "memlab:*"
