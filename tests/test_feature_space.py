"""Feature-space methods of percept.understand: any layer as a cached feature extractor, nearest neighbours, PCA/t-SNE
embeddings and top patches; checked on a tiny colour network whose answers are known, on EfficientNet-Lite0 and
through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from percept.cli import main
from percept.errors import PerceptError
from percept.image import load_image, read_metadata
from percept.models import get_model, view_transform
from percept.understand import (
    Classifier,
    embedding,
    embedding_figure,
    folder_features,
    layer_backbone,
    neighbours,
    neighbours_grid,
    patches_grid,
    receptive_field,
    top_patches,
)
from percept.understand.layer_features import LayerOutput, class_label


class ColourNet(nn.Module):
    """Channel 0 responds to red, 1 to blue, 2 to brightness (3x3 averages, then a 3x3 stride-2 average: receptive
    field 5 px, stride 2, unit (i, j) centred on pixel (2i, 2j)); in-place ReLUs as in torchvision models."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(3, 3, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.fc = nn.Linear(3, 2)
        colour = torch.tensor([[1.0, -0.5, -0.5], [-0.5, -0.5, 1.0], [1 / 3, 1 / 3, 1 / 3]])
        with torch.no_grad():
            self.features[0].weight.copy_(colour[:, :, None, None].expand(3, 3, 3, 3) / 9)
            self.features[2].weight.copy_(torch.eye(3)[:, :, None, None].expand(3, 3, 3, 3) / 9)
            for conv in (self.features[0], self.features[2]):
                conv.bias.zero_()
            self.fc.weight.copy_(torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def tiny():
    model = ColourNet().eval().requires_grad_(False)
    return Classifier(model, ["red", "blue"], 32, 32, "colournet", view_transform(32, 32))


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    """colours/{red,blue}/*.png: 6 noisy reddish and 6 noisy bluish 32 px images."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir()
        for i in range(6):
            arr = rng.uniform(0.0, 0.35, (32, 32, 3))
            arr[..., channel] = rng.uniform(0.6, 1.0, (32, 32))
            Image.fromarray((arr * 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def spots(tmp_path_factory):
    """spots/spot/*.png: grey 32 px images with a 4 x 4 red square at a known place; spots/plain/*.png: grey."""
    root = tmp_path_factory.mktemp("spots")
    rng = np.random.default_rng(1)
    places = {}
    for name in ("spot", "plain"):
        (root / name).mkdir()
        for i in range(5):
            arr = 0.5 + rng.uniform(-0.05, 0.05, (32, 32, 3))
            if name == "spot":
                top, left = (int(v) for v in rng.integers(6, 22, 2))
                arr[top : top + 4, left : left + 4] = (1.0, 0.0, 0.0)
                places[f"{i}.png"] = (top, left)
            Image.fromarray((arr * 255).round().astype(np.uint8)).save(root / name / f"{i}.png")
    return root, places


def test_a_layer_backbone_caches_per_layer_and_leaves_no_hooks(tiny, colours, tmp_path):
    backbone = layer_backbone(tiny)  # default: the last feature map (features.3), pooled
    assert backbone.weights_id.endswith("@features.3") and backbone.dim == 3 and backbone.crop == 32
    first = folder_features(backbone, colours, cache_dir=tmp_path, batch_size=5)
    again = folder_features(backbone, colours, cache_dir=tmp_path, batch_size=5)
    assert first.cached == 0 and again.cached == 12 and np.allclose(first.features, again.features)
    assert first.classes == ["blue", "red"] and first.features.shape == (12, 3)
    shallow = layer_backbone(tiny, layer="features.0")
    assert shallow.cache_id != backbone.cache_id and folder_features(shallow, colours, cache_dir=tmp_path).cached == 0
    red = [i for i, label in enumerate(first.labels) if label == "red"]
    assert (first.features[red, 0] > first.features[red, 1]).all()
    assert _hooks(tiny.model) == 0 and all(m.inplace for m in tiny.model.modules() if isinstance(m, nn.ReLU))
    with pytest.raises(PerceptError, match="unknown layer 'features.9'"):
        layer_backbone(tiny, layer="features.9")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PerceptError, match="no images under image folder"):
        folder_features(backbone, tmp_path / "empty")
    assert class_label(colours / "red" / "0.png", colours) == "red"
    assert class_label(colours / "x.png", colours) == colours.name


def test_neighbours_of_a_red_image_are_red(tiny, colours, tmp_path):
    backbone = layer_backbone(tiny)
    query = colours / "red" / "0.png"
    r = neighbours(backbone, colours, [query, colours / "blue" / "3.png"], k=4, cache_dir=tmp_path)
    assert r.indices.shape == r.distances.shape == (2, 4) and r.labels == [["red"] * 4, ["blue"] * 4]
    assert r.same_class.all() and r.labelled.all() and query not in r.paths[0]  # the query itself is left out
    assert (np.diff(r.distances, axis=1) >= 0).all() and r.metric == "cosine"
    euclid = neighbours(backbone, colours, [query], k=20, metric="euclidean", cache_dir=tmp_path, exclude_self=False)
    assert euclid.indices.shape == (1, 12) and euclid.paths[0][0] == query and euclid.distances[0, 0] < 1e-6
    grid = neighbours_grid(r, cell=32)
    assert grid.shape[:2] == (1, 3) and grid.shape[-1] > 5 * 32
    with pytest.raises(PerceptError, match="unknown metric 'manhattan'"):
        neighbours(backbone, colours, [query], metric="manhattan", cache_dir=tmp_path)
    with pytest.raises(PerceptError, match="'.*missing.png' not found"):
        neighbours(backbone, colours, [colours / "missing.png"], cache_dir=tmp_path)


def test_embeddings_separate_red_from_blue(tiny, colours, tmp_path):
    embs = embedding(layer_backbone(tiny), colours, cache_dir=tmp_path, seed=0)
    assert [e.method for e in embs] == ["pca", "tsne"]
    for e in embs:
        assert e.coords.shape == (12, 2) and e.separation == 1.0, e.method
    assert 0 < embs[0].explained <= 1 and embs[1].explained is None
    again = embedding(layer_backbone(tiny), colours, methods=["tsne"], cache_dir=tmp_path, seed=0)[0]
    assert np.allclose(again.coords, embs[1].coords)  # seeded
    figure = embedding_figure(embs, thumbnails=4, panel_size=3, dpi=50)
    assert figure.shape[:2] == (1, 3) and figure.shape[-1] == 300
    with pytest.raises(PerceptError, match="unknown embedding method 'umap'"):
        embedding(layer_backbone(tiny), colours, methods=["umap"], cache_dir=tmp_path)


def test_top_patches_of_the_red_channel_are_the_red_squares(tiny, spots):
    root, places = spots
    reader = LayerOutput(tiny.model, "features.2", probe_size=32)
    rf = receptive_field(reader, size=32)
    assert (rf.size, rf.stride, rf.origin, rf.clipped) == (5, 2, (0.0, 0.0), False)
    r = top_patches(tiny, root, layer="features.2", channel=0, k=4, batch_size=3)
    assert r.patches.shape == (4, 3, 5, 5) and r.labels == ["spot"] * 4 and r.images == 10
    assert (np.diff(r.values) <= 0).all() and r.channels == 3
    for path, patch, box in zip(r.paths, r.patches, r.boxes):
        top, left = places[path.name]
        assert box[0] <= top + 2 <= box[2] and box[1] <= left + 2 <= box[3]  # the square's centre is in the patch
        assert patch[0, 2, 2] > 0.9 and patch[1:, 2, 2].max() < 0.1  # a red pixel in the middle
    grey = top_patches(tiny, root, layer="features.2", channel=2, k=3, per_image=2, patch=9)
    assert grey.patches.shape == (3, 3, 9, 9) and len(set(map(str, grey.paths))) >= 2
    assert patches_grid(r, cell=20).shape[:2] == (1, 3) and _hooks(tiny.model) == 0
    with pytest.raises(PerceptError, match=r"channel 3 out of range; layer 'features.2' has 3 channels \(0..2\)"):
        top_patches(tiny, root, layer="features.2", channel=3)
    with pytest.raises(PerceptError, match="not a feature map"):
        top_patches(tiny, root, layer="fc", channel=0)


# ------------------------------------------------------------------------------------------ real weights


@pytest.fixture(scope="module")
def photos(tmp_path_factory, crops, cat_path, rocket_path):
    """photos/{train,val}/{cat,rocket}: 4 and 2 crops each."""
    root = tmp_path_factory.mktemp("photos")
    for split, n, seed in (("train", 4, 0), ("val", 2, 1)):
        crops(cat_path, root / split / "cat", n, seed)
        crops(rocket_path, root / split / "rocket", n, seed + 10)
    return root


@pytest.fixture(scope="module")
def lite0():
    return get_model("efficientnet_lite0", kind="backbone")


def test_efficientnet_neighbours_embedding_and_patches(lite0, photos, tmp_path):
    assert layer_backbone("efficientnet_lite0", device="cpu").cache_id == lite0.cache_id  # shares percept train's cache
    queries = sorted((photos / "val" / "cat").glob("*.jpg"))
    r = neighbours(lite0, photos / "train", queries, k=3, cache_dir=tmp_path)
    assert r.labels == [["cat"] * 3] * 2 and r.index.cached == 0
    assert neighbours(lite0, photos / "train", queries, k=3, cache_dir=tmp_path).index.cached == 8
    pca = embedding(lite0, photos, methods=["pca"], cache_dir=tmp_path)[0]
    assert pca.separation >= 0.9 and sorted(set(pca.labels)) == ["cat", "rocket"]
    p = top_patches("efficientnet_lite0", photos / "val", layer="_blocks.3", channel=5, k=3, device="cpu")
    rf = p.receptive_field
    assert p.patches.shape == (3, 3, 35, 35) and (np.diff(p.values) <= 0).all() and p.channels == 40
    assert (rf.size, rf.stride) == (35, 8)


def test_a_run_folder_from_percept_train_is_a_network_too(photos, tmp_path):
    from percept.transfer import train_features

    run = tmp_path / "run"
    train_features(photos, run, backbone="alexnet", classifier="logreg", C=1.0, device="cpu", cache_dir=tmp_path)
    backbone = layer_backbone(run, device="cpu")  # default: its last feature map (AlexNet relu5), pooled
    assert backbone.weights_id.endswith("@0.net.layers.relu5") and backbone.dim == 256 and "#" in backbone.weights_id
    rockets = sorted((photos / "val" / "rocket").glob("*.jpg"))
    r = neighbours(backbone, photos / "train", rockets, k=2, cache_dir=tmp_path)
    assert r.labels == [["rocket"] * 2] * 2
    p = top_patches(run, photos / "val", layer="0.net.layers.relu3", channel=3, k=2, device="cpu")
    assert p.receptive_field.size == 99 and p.patches.shape == (2, 3, 99, 99)


# ------------------------------------------------------------------------------------------ command line


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_neighbours_embedding_and_top_patches(capsys, photos, tmp_path):
    cache = ["--cache-dir", tmp_path / "cache", "--device", "cpu", "-q"]
    out_png = tmp_path / "nn.png"
    code, out, _ = run(capsys, "explain", "neighbours", photos / "val", photos / "train" / "cat" / "00.jpg",
                       photos / "train" / "rocket" / "01.jpg", "-k", "2", "-o", out_png, *cache)
    assert code == 0 and "the 2 nearest of 4 images for 2 queries" in out
    assert "4 of 4 neighbours share their query's class folder" in out and "0 of 4 folder features" in out
    meta = read_metadata(out_png)
    assert meta["method"] == "explain neighbours" and meta["classes"] == [["cat"] * 2, ["rocket"] * 2]
    code, out, _ = run(capsys, "explain", "embedding", photos / "val", "-o", tmp_path / "emb.png", "--thumbnails", "3",
                       *cache)
    assert code == 0 and "4 images in 2 class folders" in out and "4 of 4 features from the cache" in out
    assert read_metadata(tmp_path / "emb.png")["separation"]["pca"] >= 0.8
    code, out, _ = run(capsys, "explain", "top-patches", photos / "val", "--layer", "_blocks.3", "--channel", "5",
                       "-k", "4", "-o", tmp_path / "tp.png", "--device", "cpu", "-q")
    assert code == 0 and "the 4 strongest patches of 4 images for channel 5 of _blocks.3" in out
    meta = read_metadata(tmp_path / "tp.png")
    assert meta["receptive_field"] == 35 and len(meta["sources"]) == 4
    assert load_image(tmp_path / "tp.png").size[0] > 4 * 96


def test_cli_errors_are_one_line(capsys, photos, tmp_path):
    (tmp_path / "empty").mkdir()
    query = photos / "val" / "cat" / "00.jpg"
    cases = [
        (["neighbours", photos, query, "--layer", "_blok.3"], "unknown layer '_blok.3'"),
        (["neighbours", photos, tmp_path / "nope.jpg"], "query image"),
        (["neighbours", tmp_path / "missing", query], "image folder"),
        (["embedding", tmp_path / "empty"], "no images under image folder"),
        (["top-patches", photos / "val", "--layer", "_blocks.3", "--channel", "40"], "channel 40 out of range"),
        (["top-patches", photos / "val", "--layer", "_fc", "--channel", "0"], "not a feature map"),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, "explain", *argv, "--device", "cpu", "-o", tmp_path / "x.png")
        assert code != 0 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x.png").exists()
