"""Listing: ``ls``/``find``/``glob``/``walk``/``du`` shapes and contents."""

from __future__ import annotations

import pytest

from conformance.harness import Target

TREE = {
    "top.txt": b"top",
    "a/one.bin": b"1",
    "a/two.txt": b"22",
    "a/deeper/three.txt": b"333",
    "b/four.bin": b"4444",
}


def make_tree(target: Target) -> dict[str, bytes]:
    files = {target.path(*name.split("/")): value for name, value in TREE.items()}
    target.fs.pipe(files)
    return {target.fs._strip_protocol(path): value for path, value in files.items()}


def norm(target: Target, *parts: str) -> str:
    return target.fs._strip_protocol(target.path(*parts))  # type: ignore[no-any-return]


def test_ls_entries_have_name_size_and_type(target: Target) -> None:
    make_tree(target)
    entries = target.fs.ls(target.root, detail=True)
    by_name = {entry["name"]: entry for entry in entries}
    assert set(by_name) == {norm(target, "top.txt"), norm(target, "a"), norm(target, "b")}
    for entry in entries:
        assert {"name", "size", "type"} <= set(entry)
        assert not entry["name"].endswith("/")
    assert by_name[norm(target, "top.txt")]["type"] == "file"
    assert by_name[norm(target, "top.txt")]["size"] == 3
    assert by_name[norm(target, "a")]["type"] == "directory"


def test_ls_without_detail_gives_the_same_full_paths(target: Target) -> None:
    make_tree(target)
    names = target.fs.ls(target.root, detail=False)
    assert all(isinstance(name, str) for name in names)
    assert sorted(names) == sorted(entry["name"] for entry in target.fs.ls(target.root, detail=True))
    assert sorted(target.fs.ls(target.path("a"), detail=False)) == [
        norm(target, "a", "deeper"),
        norm(target, "a", "one.bin"),
        norm(target, "a", "two.txt"),
    ]


def test_ls_with_a_trailing_slash_is_the_same_listing(target: Target) -> None:
    make_tree(target)
    assert sorted(target.fs.ls(target.path("a") + "/", detail=False)) == sorted(
        target.fs.ls(target.path("a"), detail=False)
    )


def test_ls_of_a_file_lists_that_file(target: Target) -> None:
    make_tree(target)
    entries = target.fs.ls(target.path("top.txt"), detail=True)
    assert [(e["name"], e["type"], e["size"]) for e in entries] == [(norm(target, "top.txt"), "file", 3)]


def test_ls_of_a_missing_path_raises_file_not_found(target: Target) -> None:
    make_tree(target)
    with pytest.raises(FileNotFoundError):
        target.fs.ls(target.path("missing"))


def test_ls_does_not_mix_in_a_sibling_with_the_same_prefix(target: Target) -> None:
    target.fs.pipe({target.path("run", "x.txt"): b"x", target.path("run-2", "y.txt"): b"y"})
    assert target.fs.ls(target.path("run"), detail=False) == [norm(target, "run", "x.txt")]


def test_find_lists_every_file_below_sorted(target: Target) -> None:
    files = make_tree(target)
    assert target.fs.find(target.root) == sorted(files)


def test_find_with_detail_maps_names_to_infos(target: Target) -> None:
    files = make_tree(target)
    found = target.fs.find(target.root, detail=True)
    assert set(found) == set(files)
    for name, info in found.items():
        assert info["name"] == name
        assert info["type"] == "file"
        assert info["size"] == len(files[name])


def test_find_with_maxdepth_stops_at_that_depth(target: Target) -> None:
    make_tree(target)
    assert target.fs.find(target.root, maxdepth=1) == [norm(target, "top.txt")]
    assert target.fs.find(target.root, maxdepth=2) == sorted(
        [
            norm(target, "top.txt"),
            norm(target, "a", "one.bin"),
            norm(target, "a", "two.txt"),
            norm(target, "b", "four.bin"),
        ]
    )


def test_find_with_dirs_includes_directories(target: Target) -> None:
    make_tree(target)
    found = target.fs.find(target.path("a"), withdirs=True, detail=True)
    assert found[norm(target, "a", "deeper")]["type"] == "directory"
    assert norm(target, "a", "deeper", "three.txt") in found


def test_find_of_a_missing_path_is_empty(target: Target) -> None:
    make_tree(target)
    assert target.fs.find(target.path("missing")) == []


def test_glob_patterns(target: Target) -> None:
    make_tree(target)
    assert target.fs.glob(target.path("*.txt")) == [norm(target, "top.txt")]
    assert sorted(target.fs.glob(target.path("a", "*"))) == [
        norm(target, "a", "deeper"),
        norm(target, "a", "one.bin"),
        norm(target, "a", "two.txt"),
    ]
    assert sorted(target.fs.glob(target.path("**", "*.txt"))) == [
        norm(target, "a", "deeper", "three.txt"),
        norm(target, "a", "two.txt"),
        norm(target, "top.txt"),
    ]
    assert sorted(target.fs.glob(target.path("?", "*.bin"))) == [
        norm(target, "a", "one.bin"),
        norm(target, "b", "four.bin"),
    ]
    assert target.fs.glob(target.path("nothing*")) == []


def test_walk_yields_directories_and_files(target: Target) -> None:
    make_tree(target)
    walked = {root: (sorted(dirs), sorted(files)) for root, dirs, files in target.fs.walk(target.root)}
    assert walked[norm(target)] == (["a", "b"], ["top.txt"])
    assert walked[norm(target, "a")] == (["deeper"], ["one.bin", "two.txt"])
    assert walked[norm(target, "a", "deeper")] == ([], ["three.txt"])


def test_du_sums_file_sizes(target: Target) -> None:
    make_tree(target)
    assert target.fs.du(target.root) == sum(len(v) for v in TREE.values())


@pytest.mark.parametrize(
    "name", ["with space.txt", "plus+sign.txt", "ünïcødé.txt", "eq=and&amp.txt", "pct%20.txt"]
)
def test_names_with_special_characters_round_trip(target: Target, name: str) -> None:
    path = target.path("special", name)
    target.fs.pipe_file(path, name.encode())
    assert target.fs.cat_file(path) == name.encode()
    assert target.fs.ls(target.path("special"), detail=False) == [norm(target, "special", name)]
    assert target.fs.find(target.root) == [norm(target, "special", name)]


@pytest.mark.need_capability("empty_directories")
def test_an_empty_directory_is_listed(target: Target) -> None:
    target.fs.makedirs(target.path("empty", "inner"), exist_ok=True)
    entries = target.fs.ls(target.path("empty"), detail=True)
    assert [(e["name"], e["type"]) for e in entries] == [(norm(target, "empty", "inner"), "directory")]
    assert target.fs.ls(target.path("empty", "inner")) == []
