"""The captioned shapes and TextImageDataModule: determinism, captions, held-out pairs, vocabulary, folders."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from datamodules.shapes_captions import (
    COLOURS,
    HELD_OUT,
    SHAPES,
    attribute_names,
    make_split,
    parse_caption,
)
from datamodules.text_image import TextImageDataModule
from gan_modules.nets.text import Vocabulary, tokenize


def test_same_seed_same_bytes_other_seed_other_images():
    a, b, c = make_split("val", seed=0), make_split("val", seed=0), make_split("val", seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert a[0].dtype == torch.uint8 and a[0].shape == (300, 3, 64, 64)
    assert not torch.equal(a[0], c[0])


def test_every_caption_parses_back_to_the_attributes_drawn():
    _, attributes, captions = make_split("val")
    assert all(len(caps) == 5 and len(set(caps)) > 1 for caps in captions)
    for row, caps in zip(attributes, captions, strict=True):
        for caption in caps:
            assert parse_caption(caption) == attribute_names(row), caption


def test_held_out_pairs_never_appear_in_train_and_are_all_of_heldout():
    held = {(COLOURS.index(c), SHAPES.index(s)) for c, s in HELD_OUT}
    for split in ("train", "val", "test"):
        pairs = {tuple(p) for p in make_split(split)[1][:, :2].tolist()}
        assert not pairs & held, split
    train_pairs = {tuple(p) for p in make_split("train")[1][:, :2].tolist()}
    assert len(train_pairs) == len(COLOURS) * len(SHAPES) - len(held)  # every seen pair is drawn
    assert {tuple(p) for p in make_split("heldout")[1][:, :2].tolist()} == held


def test_shape_colour_is_where_the_position_says():
    images, attributes, _ = make_split("test")
    background = images[:, :, :2, :2].float().mean(dim=(2, 3))  # corners are background in every position...
    for image, row, bg in zip(images[:20], attributes[:20], background[:20], strict=True):
        names = attribute_names(row)
        x = 18 if "left" in names["position"] else 46 if "right" in names["position"] else 32
        y = 18 if "top" in names["position"] else 46 if "bottom" in names["position"] else 32
        centre = image[:, y - 1:y + 2, x - 1:x + 2].float().mean(dim=(1, 2))
        assert (centre - bg).abs().max() > 60, names  # ...the shape's colour is at its centre


def test_vocabulary_unknown_words_and_bad_captions():
    vocab = Vocabulary.build(["a red circle", "A blue square, top left"])
    assert vocab.words[:2] == ["<pad>", "<unk>"] and "square" in vocab.words and "A" not in vocab.words
    tokens, length = vocab.encode("a purple circle", max_length=5)
    assert length == 3 and tokens.tolist() == [vocab.index["a"], 1, vocab.index["circle"], 0, 0]
    assert tokenize("Top-left, RED!") == ["top", "left", "red"]
    with pytest.raises(ValueError, match="empty"):
        vocab.encode("  ,. ", max_length=5)
    with pytest.raises(ValueError, match="only words the vocabulary does not know"):
        vocab.encode("purple hexagon", max_length=5)


def test_datamodule_batches_and_vocabulary_from_training_captions():
    data = TextImageDataModule(batch_size=6, max_length=12)
    data.setup()
    assert data.sample_shape == (3, 64, 64)
    train = data.split("train")
    assert len(train) == 5 * len(train.images)
    assert data.vocabulary == Vocabulary.build(c for caps in train.captions for c in caps)
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"image", "caption_tokens", "caption_length", "attributes"}
    assert batch["image"].shape == (6, 3, 64, 64) and -1 <= batch["image"].min() and batch["image"].max() <= 1
    assert batch["caption_tokens"].shape == (6, 12) and batch["attributes"].shape == (6, 4)
    for tokens, length in zip(batch["caption_tokens"], batch["caption_length"], strict=True):
        assert (tokens[:length] > 1).all() and (tokens[length:] == 0).all()
    i, j = train.pairs[7].tolist()
    assert train[7]["caption_tokens"].tolist() == data.vocabulary.encode(train.captions[i][j], 12)[0].tolist()
    assert parse_caption(train.caption(7)) == attribute_names(train.attributes[i])
    predict = next(iter(data.predict_dataloader()))
    assert set(predict) == {"index", "caption_tokens", "caption_length"}


def test_embedded_set_is_64_px_and_splits_are_checked():
    with pytest.raises(ValueError, match="image_size"):
        TextImageDataModule(image_size=32)
    with pytest.raises(ValueError, match="test_split"):
        TextImageDataModule(test_split="nope")


def _folder(root, split, names, captions=None):
    for name in names:
        (root / split / "images" / "birds").mkdir(parents=True, exist_ok=True)
        (root / split / "text" / "birds").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (200, 10, 10)).save(root / split / "images" / "birds" / f"{name}.png")
        text = (captions or {}).get(name, f"a red bird called {name}\nthe {name} is red\n")
        if text is not None:
            (root / split / "text" / "birds" / f"{name}.txt").write_text(text)


def test_captioned_folder(tmp_path):
    _folder(tmp_path, "train", ["one", "two"])
    _folder(tmp_path, "val", ["three"])
    data = TextImageDataModule(root=str(tmp_path), image_size=16, batch_size=2)
    data.setup()
    assert set(data.sets) == {"train", "val"} and len(data.split("train")) == 4
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"image", "caption_tokens", "caption_length"} and batch["image"].shape == (2, 3, 16, 16)
    assert data.vocabulary.encode("red three", 4)[0][1] == 1 and data.split("val").tokens[0, 4] == 1  # unknown in val


@pytest.mark.parametrize(("captions", "error", "match"), [
    ({"two": None}, FileNotFoundError, r"two\.png' has no captions file: expected .*two\.txt"),
    ({"two": "\n  \n"}, ValueError, r"two\.txt.*has no caption"),
    ({"two": "!!!\n"}, ValueError, "empty"),
])
def test_captioned_folder_bad_input(tmp_path, captions, error, match):
    _folder(tmp_path, "train", ["one", "two"], captions)
    with pytest.raises(error, match=match):
        TextImageDataModule(root=str(tmp_path)).setup()


def test_captioned_folder_missing_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.root"):
        TextImageDataModule(root=str(tmp_path)).setup()
