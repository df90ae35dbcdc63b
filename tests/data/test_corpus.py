import json

import pytest

from dind.data import TextFiles, split_of


def test_files_sorted_relative_keys_and_jsonl_lines(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("bee")
    (tmp_path / "a.txt").write_text("ay")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "x"}) + "\n\n" + json.dumps({"text": "y"}) + "\n")
    docs = list(TextFiles([str(tmp_path)], pattern="*").documents())
    assert docs == [("a.txt", "ay"), ("c.jsonl:0", "x"), ("c.jsonl:2", "y"), ("sub/b.txt", "bee")]


def test_document_delimiter_splits_files(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\n\ntwo\n\n\n\n\n\nthree")
    docs = list(TextFiles([str(tmp_path)], document_delimiter="\n\n\n").documents())
    assert [text.strip() for _, text in docs] == ["one", "two", "three"]
    assert len({key for key, _ in docs}) == 3


def test_fingerprint_changes_with_content(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("first")
    before = TextFiles([str(tmp_path)]).fingerprint()
    path.write_text("second, longer")
    assert TextFiles([str(tmp_path)]).fingerprint() != before


def test_missing_path_and_empty_match_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="paths"):
        list(TextFiles([str(tmp_path / "nope")]).documents())
    with pytest.raises(ValueError, match="pattern"):
        list(TextFiles([str(tmp_path)]).documents())


def test_split_is_a_deterministic_function_of_key_and_seed():
    keys = [f"doc{i}" for i in range(2000)]
    splits = [split_of(k, validation_fraction=0.1, seed=3) for k in keys]
    assert splits == [split_of(k, validation_fraction=0.1, seed=3) for k in keys]
    fraction = splits.count("validation") / len(keys)
    assert 0.07 < fraction < 0.13
    assert splits != [split_of(k, validation_fraction=0.1, seed=4) for k in keys]
    assert all(split_of(k, validation_fraction=0.0) == "train" for k in keys[:50])


def test_split_fraction_validated():
    with pytest.raises(ValueError, match="validation_fraction"):
        split_of("a", validation_fraction=1.0)


def test_exclude_leaves_matching_keys_out(tmp_path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name)
    keys = [key for key, _ in TextFiles([str(tmp_path)], exclude=["b.txt"]).documents()]
    assert keys == ["a.txt", "c.txt"]
    assert TextFiles([str(tmp_path)], exclude="b*").fingerprint() != TextFiles([str(tmp_path)]).fingerprint()
    with pytest.raises(ValueError, match="exclude"):
        list(TextFiles([str(tmp_path)], exclude=["*"]).documents())


def test_invalid_utf8_names_the_file_and_the_byte_offset(tmp_path):
    from dind.errors import DataFormatError

    (tmp_path / "a.txt").write_bytes(b"fine text\n" * 3 + b"\xff rest")
    with pytest.raises(
        DataFormatError, match=r"a.txt is not valid utf-8 text: invalid start byte at byte offset 30"
    ):
        list(TextFiles([str(tmp_path / "a.txt")]).documents())
