"""The model boundary: page text that could pass for a chat-template token or an order to a model.

Used on the way in (the prompt neutralizes it) and on the way out (rules
refuse a summary that still holds it; the extractive summarizer skips it).
"""

from __future__ import annotations

import re

# Chat-template control tokens of the common model families, plus anything
# shaped like our own delimiters. Vocabulary-special strings in user content
# can be tokenized as real control tokens, ending the user turn early.
_BOUNDARY_TOKEN = re.compile(
    r"<[|｜][^<>\n]{1,40}[|｜]>"  # ChatML, Llama 3, Phi, DeepSeek: <|im_start|>, <|eot_id|>, <|user|>
    r"|\[/?(?:INST|SYS|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS)\]"  # Llama 2, Mistral
    r"|<</?SYS>>"
    r"|</?s>"
    r"|<(?:start_of_turn|end_of_turn|bos|eos|pad|unk|think|/think)>"  # Gemma, reasoning models
    r"|<{3,}[^<>\n]{0,40}>{3,}"  # our delimiters and look-alikes
    r"|#{2,}\s*(?:Instruction|Response|System|Input)\s*:",  # Alpaca-style turn headers
    re.IGNORECASE,
)
_DEFANG = str.maketrans({"<": "‹", ">": "›", "[": "⟦", "]": "⟧", "|": "¦", "｜": "¦", "#": "＃"})


def neutralize(text: str) -> str:
    """Return ``text`` with every prompt-boundary token defanged (brackets swapped for look-alikes).

    Repeats until stable, so a token rebuilt by removing an inner one is caught too.
    """
    while True:
        defanged = _BOUNDARY_TOKEN.sub(lambda m: m.group(0).translate(_DEFANG), text)
        if defanged == text:
            return text
        text = defanged


# Sentences that speak to a model rather than describe the page. Mostly
# English, which is where injection payloads are found, with the core
# "ignore the instructions" phrase in a few other languages. Narrow on
# purpose: "drivers who ignore traffic rules" is news, not an injection.
_ADDRESSES_MODEL = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:\w+\s+){0,3}?"
    r"(?:previous|prior|above|earlier|preceding|all|any|your|system|original)\s+(?:\w+\s+)?"
    r"(?:instructions?|prompts?|rules|directions|guidelines|context)\b"
    r"|\b(?:reveal|print|show|repeat|output|leak)\s+(?:your|the)\s+(?:system|developer|hidden)\s+"
    r"(?:prompt|message|instructions?)\b"
    r"|\b(?:you\s+are\s+now|act\s+as|pretend\s+to\s+be|if\s+you\s+are)\s+(?:an?\s+)?"
    r"(?:ai|llm|language\s+model|chatbot|(?:ai\s+)?assistant|gpt|chatgpt|claude|gemini)\b"
    r"|^\W*(?:dear\s+)?(?:ai|llm|chatgpt|gpt|claude|gemini|assistants?|language\s+models?|ai\s+\w+)\s*[,:]"
    r"|\b(?:your|the)\s+(?:summary|response|answer|output)\s+(?:must|should|shall)\b"
    r"|\bnew\s+instructions?\s*:"
    r"|\bignor(?:ez|iere|ieren|a|e)\b[^.!?\n]{0,40}?\b(?:instructions|anweisungen|instrucciones|istruzioni)\b"
    r"|игнорируй|忽略(?:之前|以上|所有)?的?(?:指令|指示)|(?:指示|命令)を無視",
    re.IGNORECASE | re.MULTILINE,
)
# "reply PWNED": a reply verb followed by a shouted word; only the verb ignores case.
_SHOUTED_REPLY = re.compile(
    r"\b(?i:reply|respond|answer|output|print|say|write|return)\s+(?i:only\s+)?(?i:with\s+)?"
    r"(?i:the\s+word\s+)?[\"'“‘«]?[A-Z]{4,}\b"
)


def addresses_model(text: str) -> bool:
    """True when ``text`` reads as an instruction to a model (prompt-injection shape)."""
    return bool(_ADDRESSES_MODEL.search(text) or _SHOUTED_REPLY.search(text))
