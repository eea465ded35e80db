"""The attention explorer (scripts/show_attention.py --html): its numbers are the model's attention, recomputed
from q, k and v, and the page works in a real browser, headless Chromium from the system (Debian's `chromium`
and `chromium-driver`, which .ci/run installs), driven by selenium: it loads offline without a console error,
a thumbnail opens its head, a token opens its row of arithmetic, and it shows the model's numbers."""

from __future__ import annotations

import io
import json
import shutil

import matplotlib.image
import pytest
import torch
from conftest import ROOT, load_script
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from minibert import BertModel
from minibert.inspection import InspectionError, attention_detail, attention_page, load_encoder

TOL = dict(atol=1e-5, rtol=1e-5)
TEXT, PAIR = "the cat sat on the mat because it was tired.", "it fell asleep there."
PAD_TO = 24  # 19 tokens and 5 [PAD]s: the mask is at work on the page


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return load_encoder(str(minilm_dir))


@pytest.fixture(scope="module")
def detail(minilm):
    return attention_detail(*minilm, TEXT, PAIR, pad_to=PAD_TO)


@pytest.fixture(scope="module")
def random_minilm(minilm, tmp_path_factory):
    """MiniLM's shape and vocabulary with random weights: the 'before pre-training' side of a comparison."""
    model, tok = minilm
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("random-minilm")
    BertModel(model.config).save_pretrained(path, tokenizer=tok)
    return path


# ---- The numbers ------------------------------------------------------------------------------------------


def test_q_k_v_give_back_the_models_probabilities_and_outputs(minilm, detail):
    """softmax(q·k / sqrt(d_k) + M) of the recomputed q and k is the model's output_attentions, and
    sum_j p_ij v_j is what each head hands to the output projection (caught by a hook on `attn.out`)."""
    model, _ = minilm
    L, nh, T, hd = detail.q.shape
    assert (L, nh, T, hd) == (6, 12, PAD_TO, 32) and detail.attention_mask.count(0) == 5
    assert detail.mask_bias[-1] == torch.finfo(torch.float32).min and detail.mask_bias[0] == 0
    torch.testing.assert_close(detail.recomputed_probs(), detail.probs, **TOL)
    assert detail.probs[..., -5:].max() == 0  # no weight on a padding key
    heads_in = []
    hooks = [layer.attn.out.register_forward_hook(lambda m, args, out: heads_in.append(args[0][0]))
             for layer in model.encoder.layers]
    try:
        attention_detail(model, minilm[1], TEXT, PAIR, pad_to=PAD_TO)
    finally:
        for h in hooks:
            h.remove()
    ctx = torch.stack(heads_in).view(L, T, nh, hd).transpose(1, 2)  # (L, nh, T, hd), as the heads left it
    torch.testing.assert_close(detail.outputs(), ctx, **TOL)


def test_the_page_embeds_the_models_numbers_and_no_link(detail):
    page = attention_page([("MiniLM", detail)], TEXT, PAIR)
    assert "__DATA__" not in page and "Content-Security-Policy" in page
    for outside in ("src=", "href=", "https://", "@import", "fetch(", "XMLHttpRequest"):
        assert outside not in page  # nothing to load: the only URL is the SVG namespace, a name
    tricky = attention_page([("a </script> model", detail)], "</script><script>alert(1)</script>", None)
    assert tricky.count("</script>") == page.count("</script>")  # a text cannot close the data block


def test_the_script_checks_its_options_before_loading(minilm_dir, random_minilm, tmp_path, capsys):
    script = load_script("show_attention")
    page = tmp_path / "page.html"
    page.write_text("the user's own file")
    cases = [
        ([TEXT, "--html", str(page)], f"--html {page} exists; pass --overwrite"),
        ([TEXT, "--compare", str(minilm_dir)], "--compare needs --html"),
        ([TEXT, "--pad-to", "30"], "--pad-to needs --html"),
        ([TEXT, PAIR, "--pair", PAIR], "the second segment is given twice"),
        ([TEXT, "--html", str(tmp_path / "no" / "page.html")], "does not exist; create it first"),
        ([TEXT, "--html", str(page), "--overwrite", "--pad-to", "5", "--model", str(minilm_dir)], "--pad-to 5 must be between"),
        ([TEXT, "--html", str(page), "--overwrite", "--head", "12", "--model", str(minilm_dir)], "--head 12 does not exist"),
    ]
    for argv, message in cases:
        assert script.main(argv + ["--no-trace"]) == 2, argv
        assert message in capsys.readouterr().err
    assert page.read_text() == "the user's own file"  # refused: an existing page needs --overwrite

    # One text (no pair, no padding), the PNG too because --output is given, then --overwrite replaces the page.
    png = tmp_path / "grid.png"
    for extra in ([], ["--overwrite"]):
        argv = ["the cat sat .", "--model", str(minilm_dir), "--html", str(tmp_path / "one.html"), "--output", str(png)]
        assert script.main(argv + extra + ["--no-trace"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {png}: 6 layer(s) x 12 head(s)" in printed and "the attention explorer" in printed
    embedded = json.loads((tmp_path / "one.html").read_text().split('<script id="data" type="application/json">')[1].split("</script>")[0])
    assert embedded["tokens"] == ["[CLS]", "the", "cat", "sat", ".", "[SEP]"] and embedded["pair"] is None
    assert embedded["segments"] == [0] * 6 and embedded["mask"] == [1] * 6 and len(embedded["models"]) == 1
    assert (tmp_path / "one.html").read_text().count("the user's own file") == 0 and page.read_text() == "the user's own file"


# ---- In the browser -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(minilm_dir, random_minilm, tmp_path_factory):
    """The script's pages: MiniLM alone, and MiniLM beside its random-weight twin."""
    script = load_script("show_attention")
    folder = tmp_path_factory.mktemp("pages")
    one, two = folder / "one.html", folder / "two.html"
    common = [TEXT, PAIR, "--model", str(minilm_dir), "--pad-to", str(PAD_TO), "--no-trace"]
    assert script.main(common + ["--html", str(one)]) == 0
    assert script.main(common + ["--html", str(two), "--compare", str(random_minilm), "--layer", "5", "--head", "11"]) == 0
    return one, two


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system packages; nothing is downloaded (no Selenium Manager, no browser build)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    b = webdriver.Chrome(options=options, service=Service(driver))
    yield b
    b.quit()


def open_page(browser, path):
    browser.get(path.as_uri())
    browser.get_log("browser")  # start each test with an empty console log
    return browser


def arithmetic(browser) -> dict:
    """What the arithmetic view shows: its layer, head and query, and each column as numbers."""
    box = browser.find_element(By.ID, "arith")
    shown = {name: int(box.get_attribute(f"data-{name}")) for name in ("model", "layer", "head", "query")}
    for column in ("p", "dot", "scaled", "mask"):
        shown[column] = [float(c.text) for c in box.find_elements(By.CSS_SELECTOR, f"td.{column}")]
    for vector in ("q", "output"):
        shown[vector] = [float(x) for x in box.find_element(By.CSS_SELECTOR, f"span.{vector}").text.strip(" []").split(", ")]
    return shown


def test_the_page_loads_offline_without_a_console_error(browser, pages):
    b = open_page(browser, pages[0])
    b.refresh()  # the log is read after a full load of its own
    assert [e for e in b.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    assert b.execute_script("return performance.getEntriesByType('resource').length") == 0  # no request at all
    assert len(b.find_elements(By.CSS_SELECTOR, "canvas.thumb")) == 6 * 12
    assert "padding included" in b.find_element(By.ID, "input").text
    shipped = ROOT / "docs" / "figures" / "attention.html"  # the example page the walkthrough links to
    assert "figures/attention.html" in (ROOT / "docs" / "WALKTHROUGH.md").read_text(encoding="utf-8")
    b.get(shipped.as_uri())
    assert [e for e in b.get_log("browser") if e["level"] in ("SEVERE", "WARNING")] == []
    assert len(b.find_elements(By.CSS_SELECTOR, "canvas.thumb")) == 6 * 12


def test_clicking_a_thumbnail_opens_that_head(browser, pages):
    b = open_page(browser, pages[0])
    b.find_element(By.CSS_SELECTOR, 'canvas.thumb[data-layer="3"][data-head="7"]').click()
    assert b.find_element(By.ID, "head-title").text == "layer 3, head 7"
    shown = arithmetic(b)
    assert (shown["layer"], shown["head"]) == (3, 7)
    selected = b.find_elements(By.CSS_SELECTOR, "canvas.thumb.selected")
    assert [(c.get_attribute("data-layer"), c.get_attribute("data-head")) for c in selected] == [("3", "7")]


def near(shown, want, digits):
    """Equal to the printed precision: shown is want rounded to `digits` decimals (half a unit, and float32)."""
    return all(abs(s - float(w)) <= 0.5 * 10 ** -digits + 1e-6 for s, w in zip(shown, want, strict=True))


def test_the_arithmetic_shows_the_models_numbers(browser, pages, detail):
    b = open_page(browser, pages[0])
    for layer, head, query in ((0, 2, 3), (5, 11, 20)):  # 20 is a [PAD] query: computed, read by nothing
        b.find_element(By.CSS_SELECTOR, f'canvas.thumb[data-layer="{layer}"][data-head="{head}"]').click()
        b.find_element(By.CSS_SELECTOR, f'text[data-side="query"][data-token="{query}"]').click()
        ActionChains(b).move_to_element(b.find_element(By.ID, "arith-title")).perform()  # hover nothing
        shown = arithmetic(b)
        assert (shown["layer"], shown["head"], shown["query"]) == (layer, head, query)
        assert near(shown["p"], detail.probs[layer, head, query], 4)  # the model's output_attentions
        assert near(shown["dot"], detail.dots[layer, head, query], 3)
        assert near(shown["scaled"], detail.dots[layer, head, query] / 32 ** 0.5, 3)
        assert shown["mask"] == [0.0] * 19 + [-3.40e38] * 5
        for got, want in ((shown["q"], detail.q[layer, head, query]), (shown["output"], detail.outputs()[layer, head, query])):
            # 3 significant digits of float16 vectors: a few units in the third digit
            assert all(abs(g - w) <= 6e-3 * abs(w) + 2e-3 for g, w in zip(got, want.tolist(), strict=True))
    assert "padding position" in b.find_element(By.ID, "arith").text


def test_hovering_a_token_shows_its_row(browser, pages, detail):
    b = open_page(browser, pages[0])
    b.find_element(By.CSS_SELECTOR, 'canvas.thumb[data-layer="5"][data-head="11"]').click()
    assert arithmetic(b)["query"] == 1  # the first token after [CLS] to start with
    token = b.find_element(By.CSS_SELECTOR, 'text[data-side="query"][data-token="8"]')  # "it"
    b.execute_script("arguments[0].scrollIntoView({block: 'center'})", token)
    ActionChains(b).move_to_element(token).perform()
    shown = arithmetic(b)
    assert shown["query"] == 8 and '"it"' in b.find_element(By.ID, "arith-title").text
    assert near(shown["p"], detail.probs[5, 11, 8], 4)
    drawn = b.execute_script("return [...document.querySelectorAll('#heads line')]"
                             ".filter(l => l.style.display !== 'none').map(l => l.dataset.query)")
    assert set(drawn) == {"8"}  # the token isolated
    ActionChains(b).move_to_element(b.find_element(By.ID, "arith-title")).perform()
    assert arithmetic(b)["query"] == 1  # back to the chosen token when the mouse leaves


def test_hiding_cls_and_sep_renormalises_the_rows_and_says_so(browser, pages, detail):
    b = open_page(browser, pages[0])
    b.find_element(By.CSS_SELECTOR, 'canvas.thumb[data-layer="2"][data-head="0"]').click()
    b.find_element(By.ID, "hide-special").click()
    assert "renormalised" in b.find_element(By.ID, "hidden-note").text
    words = [t.text for t in b.find_elements(By.CSS_SELECTOR, '#heads text[data-side="key"]')]
    assert "[CLS]" not in words and "[SEP]" not in words and len(words) == PAD_TO - 3
    row = detail.probs[2, 0, 2].clone()  # query 2, "cat"
    row[[0, 12, 18]] = 0  # [CLS] and both [SEP]s
    row /= row.sum()
    drawn = {int(l.get_attribute("data-key")): float(l.get_attribute("stroke-opacity"))
             for l in b.find_elements(By.CSS_SELECTOR, '#heads line[data-query="2"]')}
    assert drawn and all(abs(w - float(row[j])) <= 5e-4 + 1e-6 for j, w in drawn.items())
    assert set(drawn) == {j for j in range(PAD_TO) if row[j] >= 0.005}  # the faint ones are not drawn
    assert near(arithmetic(b)["p"], detail.probs[2, 0, 1], 4)  # the arithmetic keeps the model's own row


def test_two_models_side_by_side_and_their_difference(browser, pages, detail, random_minilm):
    b = open_page(browser, pages[1])
    assert b.find_element(By.ID, "head-title").text == "layer 5, head 11"  # where --layer and --head opened it
    captions = [c.text for c in b.find_elements(By.CSS_SELECTOR, "table.grid caption")]
    assert len(captions) == 3 and captions[2].startswith("difference")
    assert len(b.find_elements(By.CSS_SELECTOR, 'canvas.thumb[data-model="diff"]')) == 6 * 12
    assert len(b.find_elements(By.CSS_SELECTOR, "div.headview")) == 2
    b.find_element(By.CSS_SELECTOR, 'canvas.thumb[data-model="1"][data-layer="4"][data-head="3"]').click()
    other = attention_detail(*load_encoder(str(random_minilm)), TEXT, PAIR, pad_to=PAD_TO)
    shown = arithmetic(b)
    assert (shown["model"], shown["layer"], shown["head"]) == (1, 4, 3)
    assert near(shown["p"], other.probs[4, 3, 1], 4) and not near(shown["p"], detail.probs[4, 3, 1], 4)
    # The difference thumbnail's top-left pixel: red when the first model puts more weight there, blue when less.
    pixel = b.execute_script("""const c = document.querySelector('canvas.thumb[data-model="diff"][data-layer="4"][data-head="3"]');
                                return Array.from(c.getContext('2d').getImageData(0, 0, 1, 1).data);""")
    diff = float(detail.probs[4, 3, 0, 0] - other.probs[4, 3, 0, 0])
    assert (pixel[0] > pixel[2]) == (diff > 0) and abs(max(pixel[:3]) - min(pixel[:3]) - round(255 * min(1, abs(diff)))) <= 1


def test_a_screenshot_is_not_blank(browser, pages):
    b = open_page(browser, pages[1])
    png = matplotlib.image.imread(io.BytesIO(b.get_screenshot_as_png()))  # (height, width, 3 or 4) in 0..1
    assert png.shape[0] >= 800 and png.shape[1] >= 1300  # the viewport of a 1400 x 1000 window
    assert png[..., :3].std() > 0.1  # a blank or one-colour page has about 0
    assert len({tuple(p) for p in (png[::4, ::4, :3] * 255).astype(int).reshape(-1, 3).tolist()}) > 200  # thumbnails' colours


def test_different_vocabularies_are_not_compared(detail, minilm, tmp_path):
    model, tok = minilm
    other = attention_detail(model, tok, "the dog sat on the mat because it was tired.", PAIR, pad_to=PAD_TO)
    with pytest.raises(InspectionError, match="other tokens"):
        attention_page([("a", detail), ("b", other)], TEXT, PAIR)
