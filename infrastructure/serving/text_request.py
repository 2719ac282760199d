"""Request types of the text service, built from its limits.

Pydantic validates each request before it reaches the batching queue, so one bad text can
never fail a batch that holds other clients' texts. Texts are normalized here
(:func:`domain.data.text.normalize_text`): the model and the response cache see the same
string. Annotations are evaluated eagerly (no ``__future__`` import): they name local types.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    StringConstraints,
    Tag,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from domain.data.text import WHITESPACE_CLASS, normalize_text


def _normalized_not_blank(text: str) -> str:
    normalized = normalize_text(text)
    if not normalized:
        raise ValueError("text is blank (only whitespace)")
    return normalized


class TextsBody(RootModel[Any]):
    """``predict``'s body, whichever shape the client sent; the built type adds the shapes."""

    def all_texts(self) -> list[str]:
        root = self.root
        return [root.text] if hasattr(root, "text") else list(root.texts)


@dataclass(frozen=True)
class NotBlankInSchema:
    """Says "not blank" in the JSON schema as a pattern (a non-space character somewhere).

    Only the schema gets the pattern: validation keeps the normalizer's own check, whose
    error says "text is blank" rather than quoting a character class.
    """

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = f"[^{WHITESPACE_CLASS}]"
        return json_schema


@dataclass(frozen=True)
class TextRequestTypes:
    """``texts`` types ``classify``'s body field (a list of ``text``); ``predict_body`` is
    ``predict``'s whole body."""

    texts: Any
    text: Any
    predict_body: type[TextsBody]


def _choose_shape(body: Any) -> str:
    return "texts" if isinstance(body, dict) and "texts" in body else "text"


def build_text_request_types(max_chars: int, max_texts: int) -> TextRequestTypes:
    one_text = Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=max_chars),
        AfterValidator(_normalized_not_blank),
        NotBlankInSchema(),
    ]
    many_texts = Annotated[list[one_text], Field(min_length=1, max_length=max_texts)]

    class OneText(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        text: one_text

    class ManyTexts(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        texts: many_texts

    body = Annotated[
        Union[Annotated[OneText, Tag("text")], Annotated[ManyTexts, Tag("texts")]],  # noqa: UP007
        Discriminator(_choose_shape),
    ]

    class PredictRequest(TextsBody):
        """One text as {"text": ...}, or several as {"texts": [...]}."""

        root: body

    return TextRequestTypes(texts=many_texts, text=one_text, predict_body=PredictRequest)
