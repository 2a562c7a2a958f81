"""The app in a real browser: Playwright driving Debian's Chromium (`apt install chromium`)."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import ROOT, SEED, free_port

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: .ci/run installs Debian's chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt install chromium)")

HOSTILE = (
    "# 安全测试\n\n这篇文章里有<script>alert('xss')</script>和<img src=x onerror=alert(2)>两段代码，"
    "还有一个<a href='javascript:alert(3)'>链接</a>和全角的＜script＞alert(4)＜/script＞，都应当原样显示为文字。\n"
)
NEW_ARTICLE = "# 图书馆扩建\n\n新城图书馆扩建完成，新增藏书五万册。周末开放时间延长到晚上九点。\n"


def start_app(folder, *options):
    corpus = folder / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    (corpus / "hostile.md").write_text(HOSTILE, encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", str(folder / "index"), "--corpus", str(corpus), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the app did not start:\n{process.stdout.read()}")
            time.sleep(0.5)
    return process, url


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The running app: its URL and the folder holding its corpus and index."""
    folder = tmp_path_factory.mktemp("app")
    process, url = start_app(folder)
    yield url, folder
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def app_url(app):
    return app[0]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs, elsewhere = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: None if request.url.startswith((app_url, "data:", "blob:")) else elsewhere.append(request.url))
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#question textarea").wait_for(timeout=60000)  # the app keeps a connection open
    yield page
    assert dialogs == [], f"a script ran: {dialogs}"
    assert elsewhere == [], f"the page reached beyond the app: {elsewhere}"
    page.close()


def ask(page, question: str) -> None:
    page.get_by_role("tab", name="问答").click()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")  # Enter submits


def test_asking_shows_the_answer_highlighted_in_its_passage(page, tmp_path):
    ask(page, "从武清坐京津城际到北京南站要多长时间？")
    answer = page.locator("#results mark.answer").first
    answer.wait_for(timeout=30000)
    assert answer.inner_text() == "22分钟"
    assert page.locator("#results mark.term").count() > 0
    assert "把握" in page.locator("#results .qa-confidence").first.inner_text()
    page.screenshot(path=str(tmp_path / "answer-laptop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(tmp_path / "answer-phone.png"), full_page=True)
    assert (tmp_path / "answer-phone.png").stat().st_size > 10000


def test_the_answer_line_comes_first_and_names_its_source(page):
    ask(page, "从武清坐城际到北京南站要多久？")
    line = page.locator("#results .qa-answer-line")
    line.wait_for(timeout=30000)
    text = line.inner_text()
    assert text.startswith("答案：22分钟") and "把握" in text and "来源：" in text
    # above the cards, and the same span is marked in the card it names
    assert line.bounding_box()["y"] < page.locator("#results .qa-hit").first.bounding_box()["y"]
    rank = line.get_attribute("data-rank")
    assert page.locator(f'#results .qa-hit[data-rank="{rank}"] mark.answer').first.inner_text() == "22分钟"


def test_the_ask_button_works_too_and_examples_come_from_the_corpus(page):
    page.locator("#question textarea").fill("V1汽车世界以什么为核心？")
    page.locator("#ask").click()
    page.locator("#results mark.answer").first.wait_for(timeout=30000)
    assert page.locator("#results mark.answer").first.inner_text() == "国际级别赛道"
    assert page.get_by_text("多少").count() > 0  # examples are questions drawn from the articles


def test_a_question_the_articles_cannot_answer_says_so(page, tmp_path):
    ask(page, "今天天气怎么样？")
    notice = page.get_by_text("资料中没有找到这个问题的答案")
    notice.wait_for(timeout=30000)
    assert page.locator("#results .qa-hit").count() > 0  # related reading is still shown
    assert page.locator("#results mark.answer").count() == 0
    assert page.locator("#results .qa-answer-line").count() == 0
    page.screenshot(path=str(tmp_path / "no-answer.png"), full_page=True)


def test_markup_inside_articles_is_shown_as_text(page):
    ask(page, "安全测试的文章里有哪些代码？")
    page.locator("#results .qa-hit").first.wait_for(timeout=30000)
    text = page.locator("#results").inner_text()
    assert "<script>alert('xss')</script>" in text and "onerror" in text
    assert page.locator("#results script, #results img, #results a").count() == 0


def test_markup_inside_a_question_is_shown_as_text(page):
    hostile = "<script>alert(5)</script>＜script＞alert(6)＜/script＞<img src=x onerror=alert(7)>安全测试有哪些代码？"
    ask(page, hostile)
    page.locator("#results .qa-hit").first.wait_for(timeout=30000)
    assert page.locator("#results script, #results img").count() == 0
    assert "＜script＞alert(4)＜/script＞" in page.locator("#results").inner_text()


def test_an_uploaded_article_is_found_by_the_next_question(page, tmp_path):
    page.get_by_role("tab", name="资料库").click()
    upload = tmp_path / "library.md"
    upload.write_text(NEW_ARTICLE, encoding="utf-8")
    page.locator("#upload input[type=file]").set_input_files(str(upload))
    page.locator("#upload-button").click()
    page.get_by_text("已保存：library.md").wait_for(timeout=60000)
    assert "library.md" in page.locator("#articles").inner_text()
    page.screenshot(path=str(tmp_path / "library.png"), full_page=True)
    ask(page, "图书馆新增了多少藏书？")
    page.locator("#results mark.answer").first.wait_for(timeout=30000)
    assert page.locator("#results mark.answer").first.inner_text() == "五万册"


def test_the_library_lists_each_article_of_a_page_with_its_repairs(page):
    page.get_by_role("tab", name="资料库").click()
    table = page.locator("#articles")
    playwright_api.expect(table).to_contain_text("办办同心京津冀", timeout=30000)
    text = table.inner_text()
    seed_articles = ["抢占“桥头堡” 当好“主力军”", "“链”聚京津冀 “智”造一辆车", "京津产业新城：“新产业之城”擘画协同发展新范式"]
    starts = [text.index(title) for title in seed_articles]
    assert starts == sorted(starts)  # one row each, in page order
    rows = [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)])]
    assert all("办办同心京津冀" in row and "wuqing-jingjinji-coordination.md" in row for row in rows)
    assert "印在正文之后，已移回它的文章开头" in rows[2] and "移回" not in rows[0] + rows[1]


def test_the_ask_api_returns_the_json_contract(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    response = client.predict("从武清坐城际到北京南站要多久？", api_name="/ask")
    assert set(response) == {"query", "no_answer", "hits"} and len(response["hits"]) == 5
    hit = response["hits"][0]
    assert hit["answer"]["text"] == "22分钟" and hit["text"][hit["answer"]["start"] : hit["answer"]["end"]] == "22分钟"
    assert hit["article"] == "抢占“桥头堡” 当好“主力军”" and hit["page"] == "办办同心京津冀"
    assert len(client.predict("从武清坐城际到北京南站要多久？", 2, api_name="/ask")["hits"]) == 2


@pytest.mark.parametrize(
    "path",
    [
        "index/manifest.json",
        "index/CURRENT",
        "corpus/wuqing-jingjinji-coordination.md",
        "../../etc/passwd",
        "/etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "app.py",
        "pyproject.toml",
        "{index}/CURRENT",
        "{manifest}",
        "{corpus}/hostile.md",
    ],
)
def test_the_file_route_serves_nothing_of_the_project_index_or_corpus(app, path):
    url, folder = app
    manifest = next((folder / "index" / "commits").glob("commit-*.json"))
    database = folder / "index" / "passages.sqlite"
    path = path.format(index=folder / "index", manifest=manifest, database=database, corpus=folder / "corpus")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=5)
    assert refused.value.code in (403, 404)


def test_the_check_tab_marks_a_contradicted_figure_with_the_source_value(page, tmp_path):
    page.get_by_role("tab", name="核查").click()
    page.locator("#claim textarea").fill("通武廊联合推出了5条主题旅游线路")
    page.locator("#check").click()
    evidence = page.locator("#check-results .qa-contradicted mark.evidence").first
    evidence.wait_for(timeout=30000)
    assert evidence.inner_text() == "3条"
    assert "与来源矛盾" in page.locator("#check-results").inner_text()
    page.screenshot(path=str(tmp_path / "check.png"), full_page=True)


def test_the_check_tab_says_what_holds_of_a_partly_supported_statement(page):
    page.get_by_role("tab", name="核查").click()
    page.locator("#claim textarea").fill("坐京津城际从武清到北京南站只要22分钟，武清区共有25所中学")
    page.locator("#check").click()
    summary = page.locator("#check-results .qa-summary")
    summary.wait_for(timeout=30000)
    assert summary.inner_text() == "部分有来源支持：1项有来源，1项未找到"
    assert page.locator("#check-results .qa-fact.qa-supported mark.evidence").first.inner_text() == "22分钟"
    assert page.locator("#check-results .qa-fact.qa-not_found").count() == 1


def test_a_full_queue_answers_busy_instead_of_piling_up(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    process, url = start_app(tmp_path, "--max-queue", "1")
    try:
        def ask_once(_):
            # a client each, as 30 people would have: the threads of one shared client share
            # its event stream, and a job sent as that stream closed came back CancelledError
            client = Client(url, verbose=False)
            try:
                client.predict("从武清坐城际到北京南站要多久？", api_name="/ask")
                return "answered"
            except Exception as error:  # what the client was told
                return "busy" if "queue is full" in str(error).lower() else f"failed: {type(error).__name__}: {error}"
            finally:
                client.close()  # stops its heartbeat thread

        with ThreadPoolExecutor(max_workers=30) as pool:
            outcomes = list(pool.map(ask_once, range(30)))
    finally:
        process.terminate()
        process.communicate(timeout=30)  # reads what it printed: a full pipe would block it
    assert "busy" in outcomes and "answered" in outcomes
    assert all(o in ("busy", "answered") for o in outcomes), [o for o in outcomes if o not in ("busy", "answered")]
