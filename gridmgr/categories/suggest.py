"""Category suggestions from what people write: the top three, each with a confidence and why.

Each city's suggester learns from that city's own cases (each case's description and the
category it was finally filed under), so one city's words do not decide another's: TF-IDF over
character 1–3-grams (scikit-learn), which reads Chinese without a word dictionary and English
alike, and a logistic regression. The catalogue's names and keywords (zh and en) are part of
its training, so a category no case has used yet can still be suggested. A city with no
trained suggester (too few cases so far) is matched on the catalogue alone.

``gridmgr categories train`` trains them (and the worker, weekly); every process uses the
newest one, re-read at most every :data:`RELOAD_SECONDS` and unpickled once per process and
version (:data:`_models`).
"""

from __future__ import annotations

import io
import pickle
import threading
import time
from dataclasses import dataclass

import numpy as np
from flask import current_app
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sqlalchemy import text

from gridmgr.categories.models import CategorySuggester
from gridmgr.errors import InvalidInput
from gridmgr.extensions import db

UNCATEGORISED = "uncategorised"
RELOAD_SECONDS = 60.0
TOP = 3
MAX_TEXT = 2000


@dataclass
class _Loaded:
    id: tuple | None  # the stored suggester's id and training time; None: the catalogue's
    model: object
    checked_at: float
    names: dict[str, str]
    words: dict[str, list[str]]


_cache: dict[str, _Loaded] = {}
# Each stored suggester unpickled once per process, by database and id: cities that share
# the city-wide suggester share one copy, and a request never unpickles.
_models: dict[tuple[str, tuple], object] = {}
_lock = threading.Lock()


def _catalogue() -> list:
    return db.session.execute(text(
        "SELECT code, name_zh, name_en, keywords, coalesce(description, '') AS description "
        "FROM categories WHERE active AND code <> :u ORDER BY code"),
        {"u": UNCATEGORISED}).all()


def _catalogue_texts(rows) -> tuple[list[str], list[str]]:
    """Each category's names and keywords as short texts labelled with its code."""
    texts, labels = [], []
    for r in rows:
        words = [w for w in (r.keywords or []) if isinstance(w, str) and w]
        for t in (r.name_zh, r.name_en, *words, " ".join([r.name_zh, *words])):
            texts.append(t.lower())
            labels.append(r.code)
    return texts, labels


def build_model(texts: list[str], labels: list[str]):
    """The suggester's pipeline fitted on ``texts`` labelled with category codes."""
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True,
                        lowercase=True, min_df=1),
        LogisticRegression(C=20.0, max_iter=2000))
    model.fit(texts, labels)
    return model


def min_cases() -> int:
    return int(current_app.config["GRIDMGR_SUGGESTER_MIN_CASES"])


def training_set(catalogue: tuple[list[str], list[str]],
                 cases: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The texts and labels a suggester learns from: the catalogue's, then each case's
    (description, category code) as it is asked about later."""
    texts, labels = catalogue
    return (texts + [d[:MAX_TEXT].lower() for d, _ in cases],
            labels + [code for _, code in cases])


def train(city: str | None = None, *, commit: bool = True) -> list[dict]:
    """Train each city's suggester (only ``city``'s when given) on its own cases and the
    catalogue, and keep it; a city with fewer than :func:`min_cases` cases keeps being matched
    on the catalogue alone. Returns what each city learnt from. ``commit=False`` leaves the
    commit to the caller (the worker's job, which commits the models with the job done)."""
    cities = db.session.execute(text(
        "SELECT id, slug FROM cities WHERE CAST(:slug AS text) IS NULL OR slug = :slug "
        "ORDER BY slug"), {"slug": city}).all()
    if city is not None and not cities:
        raise InvalidInput(f"No city has the slug {city!r}.", code="city_not_found")
    rows = _catalogue()
    if not rows:
        raise InvalidInput("The catalogue has no categories; load it first.",
                           code="no_categories")
    if len(rows) < 2:
        raise InvalidInput("A suggester chooses between categories; the catalogue has only "
                           "one.", code="too_few_categories")
    catalogue = _catalogue_texts(rows)
    results = [_train_city(c.id, c.slug, catalogue) for c in cities]
    if commit:
        db.session.commit()
    _cache.clear()
    return results


def _train_city(city_id: int, slug: str, catalogue: tuple[list[str], list[str]]) -> dict:
    cases = db.session.execute(text("""
        SELECT c.description, k.code FROM cases c JOIN categories k ON k.id = c.category_id
        WHERE c.city_id = :city AND k.active AND k.code <> :u AND c.state <> 'cancelled'
          AND coalesce(c.description, '') <> ''
        ORDER BY c.id DESC LIMIT 200000"""), {"u": UNCATEGORISED, "city": city_id}).all()
    if len(cases) < min_cases():
        return {"city": slug, "cases": len(cases), "trained": False}
    texts, labels = training_set(catalogue, [(r.description, r.code) for r in cases])
    model = build_model(texts, labels)
    buffer = io.BytesIO()
    pickle.dump(model, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    metrics = {"cases": len(cases), "categories": len(set(labels))}
    db.session.add(CategorySuggester(city_id=city_id, cases=len(cases),
                                     model=buffer.getvalue(), metrics=metrics))
    return {"city": slug, **metrics, "trained": True}


def _loaded(city_id: int | None) -> _Loaded:
    """The newest suggester of the city (with no place given, of the platform's only city),
    or the catalogue's own."""
    key = f"{db.engine.url}:{city_id}"
    now = time.monotonic()
    found = _cache.get(key)
    if found is not None and now - found.checked_at < RELOAD_SECONDS:
        return found
    with _lock:
        # A stored suggester by id and time: ids start again when the table is emptied.
        newest = db.session.execute(text("""
            SELECT id, trained_at FROM category_suggesters
            WHERE city_id = coalesce(CAST(:city AS integer),
                                     (SELECT min(id) FROM cities HAVING count(*) = 1))
            ORDER BY id DESC LIMIT 1"""), {"city": city_id}).one_or_none()
        newest = tuple(newest) if newest is not None else None
        if found is not None and found.id == newest:
            found.checked_at = now
            return found
        rows = _catalogue()
        names = {r.code: r.name_zh for r in rows}
        words = {r.code: [w for w in (r.name_zh, r.name_en, *(r.keywords or []))
                          if isinstance(w, str) and w] for r in rows}
        if newest is not None:
            model = _models.get((str(db.engine.url), newest))
            if model is None:
                blob = db.session.scalar(text(
                    "SELECT model FROM category_suggesters WHERE id = :i"), {"i": newest[0]})
                model = pickle.loads(bytes(blob))  # written by train() into our own database
                _models[(str(db.engine.url), newest)] = model
        elif len(rows) > 1:  # with one category there is nothing to choose between
            model = build_model(*_catalogue_texts(rows))
        else:
            model = None
        found = _cache[key] = _Loaded(newest, model, now, names, words)
        return found


def probabilities_of(model, description: str) -> np.ndarray:
    """Each class's probability for one text: the multinomial regression's softmax computed
    directly (what ``predict_proba`` returns, without its per-call input checks, about half
    the time for a single text)."""
    vectorizer, regression = model[0], model[-1]
    if regression.coef_.shape[0] == 1:
        return model.predict_proba([description])[0]
    scores = (vectorizer.transform([description]) @ regression.coef_.T).ravel()
    scores += regression.intercept_
    scores -= scores.max()
    exp = np.exp(scores)
    return exp / exp.sum()


def _city_at(lon: float | None, lat: float | None) -> int | None:
    if lon is None or lat is None:
        return None
    from gridmgr.grids.locating import OUTSIDE, current_index

    index = current_index()
    region = int(index.locate_ids([lon], [lat])[0])
    return None if region == OUTSIDE else index.city_ids[index.row_of_id[region]]


def suggest(description: str, lon: float | None = None, lat: float | None = None,
            limit: int = TOP) -> list[dict]:
    """The ``limit`` likeliest categories for ``description``, best first, each with its
    confidence (0–1) and the reason."""
    words = (description or "").strip()
    if not words:
        raise InvalidInput("text is empty; describe the problem.", code="text_required")
    loaded = _loaded(_city_at(lon, lat))
    if loaded.model is None:
        return []
    probabilities = probabilities_of(loaded.model, words[:MAX_TEXT].lower())
    classes = loaded.model.classes_
    best = np.argsort(-probabilities)[:limit]
    source = ("learnt from the city's cases" if loaded.id is not None
              else "matched on the catalogue's names and keywords")
    lowered = words.lower()
    out = []
    for i in best:
        code = str(classes[i])
        if code not in loaded.names:
            continue
        hit = next((w for w in loaded.words[code] if w.lower() in lowered), None)
        reason = source + (f"; the text mentions {hit!r}" if hit else "")
        out.append({"code": code, "name": loaded.names[code],
                    "confidence": round(float(probabilities[i]), 3), "reason": reason})
    return out


def min_confidence() -> float:
    return float(current_app.config["GRIDMGR_CATEGORY_MIN_CONFIDENCE"])


def choose_for_report(description: str, lon: float | None, lat: float | None,
                      coord_sys: str = "wgs84") -> dict:
    """The category intake takes for a report without one: the first suggestion when its
    confidence reaches :func:`min_confidence`, else ``uncategorised`` for the operator."""
    from gridmgr.geo.coords import to_wgs84

    if lon is not None and lat is not None:
        lon, lat = to_wgs84(lon, lat, coord_sys)
    suggestions = suggest(description, lon, lat)
    threshold = min_confidence()
    if suggestions and suggestions[0]["confidence"] >= threshold:
        first = suggestions[0]
        return {"code": first["code"], "name": first["name"],
                "confidence": first["confidence"],
                "reason": f"suggested ({first['reason']}) with confidence "
                          f"{first['confidence']:.2f} ≥ {threshold:.2f}",
                "suggestions": suggestions}
    ensure_uncategorised()
    top = (f"the best suggestion, {suggestions[0]['code']}, has confidence "
           f"{suggestions[0]['confidence']:.2f} < {threshold:.2f}" if suggestions
           else "no category could be suggested")
    return {"code": UNCATEGORISED, "name": "未分类", "confidence": None,
            "reason": f"{top}: filed as uncategorised for the operator",
            "suggestions": suggestions}


def ensure_uncategorised() -> None:
    """The ``uncategorised`` category (no department, no dispatch) that reports whose category
    could not be suggested are filed under until an operator chooses one."""
    db.session.execute(text("""
        WITH c AS (
            INSERT INTO category_classes (code, kind, name_zh, name_en)
            VALUES (:u, 'event', '未分类', 'Uncategorised')
            ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id)
        INSERT INTO categories (code, class_id, name_zh, name_en, description)
        SELECT :u, id, '未分类', 'Uncategorised',
               'A report whose category an operator chooses when filing it.' FROM c
        ON CONFLICT (code) DO NOTHING"""), {"u": UNCATEGORISED})
    db.session.commit()
