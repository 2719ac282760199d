"""Request types of the text service, built from its limits.

Pydantic validates each request before it reaches the batching queue, so one bad text can
never fail a batch that holds other clients' texts. Texts are normalized here
(:func:`domain.data.text.normalize_text`): the model and the response cache see the same
string. Annotations are evaluated eagerly (no ``__future__`` import): they name local types.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from domain.data.text import normalize_text


def _normalized_not_blank(text: str) -> str:
    normalized = normalize_text(text)
    if not normalized:
        raise ValueError("text is blank (only whitespace)")
    return normalized


class TextsBody(BaseModel):
    """What ``predict`` reads from its body; the built type adds the limits."""

    text: str | None = None
    texts: list[str] | None = None

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


@dataclass(frozen=True)
class TextRequestTypes:
    """``texts`` types ``classify``'s body field; ``predict_body`` is ``predict``'s whole body."""

    texts: Any
    predict_body: type[TextsBody]


def build_text_request_types(max_chars: int, max_texts: int) -> TextRequestTypes:
    one_text = Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=max_chars),
        AfterValidator(_normalized_not_blank),
    ]
    many_texts = Annotated[list[one_text], Field(min_length=1, max_length=max_texts)]

    class PredictRequest(TextsBody):
        """One text as {"text": ...}, or several as {"texts": [...]}."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        text: one_text | None = None
        texts: many_texts | None = None

        @model_validator(mode="after")
        def _exactly_one(self) -> "PredictRequest":
            if (self.text is None) == (self.texts is None):
                raise ValueError('give exactly one of "text" (one string) or "texts" (a list)')
            return self

    return TextRequestTypes(texts=many_texts, predict_body=PredictRequest)
