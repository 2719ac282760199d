"""Synthetic datasets the pipeline has never seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_mixed_csv(path: Path, rows: int = 400, seed: int = 3) -> None:
    """A churn table: numbers, categories, missing values, and two identifier columns
    (a row number and unique names) that feature inference must leave out."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    tenure = rng.integers(1, 60, rows).astype(float)
    score = income / 10 + (plan == "pro") * 4 + (plan == "plus") * 2 - tenure / 20
    churn = np.where(score + rng.normal(0, 0.5, rows) > 6.5, "stays", "leaves")
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1),
            "customer_name": [f"Customer {i:05d}" for i in rng.permutation(rows)],
            "income": income,
            "plan": plan,
            "region": region,
            "tenure_months": tenure,
            "churn": churn,
        }
    )
    frame.loc[rng.choice(rows, 30, replace=False), "income"] = np.nan
    frame.loc[rng.choice(rows, 25, replace=False), "region"] = None
    frame.to_csv(path, index=False)


TOPIC_WORDS = {
    "sports": ["match", "goal", "coach", "league", "striker", "season"],
    "business": ["shares", "profit", "market", "merger", "investors", "quarter"],
    "science": ["telescope", "genome", "physics", "species", "laboratory", "climate"],
    "politics": ["election", "senate", "minister", "vote", "parliament", "campaign"],
}


def write_topic_jsonl(path: Path, rows: int = 400, seed: int = 5) -> None:
    """A 4-class news-topic set, JSON lines with `headline` and `topic` fields."""
    rng = np.random.default_rng(seed)
    fillers = ["the", "a", "new", "report", "today", "after", "big", "says"]
    topics = list(TOPIC_WORDS)
    records = []
    for i in range(rows):
        topic = topics[i % len(topics)]
        words = list(rng.choice(TOPIC_WORDS[topic], 2)) + list(rng.choice(fillers, 4))
        rng.shuffle(words)
        records.append({"headline": " ".join(words), "topic": topic})
    pd.DataFrame(records).to_json(path, orient="records", lines=True)
