"""What a message says, in the recipient's language (zh, en), with its links."""

from __future__ import annotations

LANGUAGES = ("zh", "en")

# kind -> language -> (subject, body). Fields: code, category, link, reason, carrier,
# carrier_link, photo, rate_link, deadline, request, url.
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "filed": {
        "zh": ("您反映的问题已立案：{code}",
               "您反映的问题（{category}）已立案，案件编号 {code}。查看进度： {link}"),
        "en": ("Your report is now case {code}",
               "The problem you reported ({category}) is now case {code}. Follow it: {link}"),
    },
    "cancelled": {
        "zh": ("您反映的问题已作废：{code}",
               "您反映的问题（{category}，编号 {code}）已作废。原因：{reason}"),
        "en": ("Your report {code} was cancelled",
               "The problem you reported ({category}, {code}) was cancelled. Reason: {reason}"),
    },
    "handled": {
        "zh": ("您反映的问题已处置：{code}",
               "您反映的问题（{category}，编号 {code}）已处置，等待核查。查看： {link}"),
        "en": ("Your report {code} was handled",
               "The problem you reported ({category}, {code}) was handled and awaits a check. "
               "See: {link}"),
    },
    "closed": {
        "zh": ("您反映的问题已结案：{code}",
               "您反映的问题（{category}，编号 {code}）已结案。查看： {link}"),
        "en": ("Your report {code} is closed",
               "The problem you reported ({category}, {code}) is solved and closed. "
               "See: {link}"),
    },
    "dispatched": {
        "zh": ("新派遣案件：{code}",
               "案件 {code}（{category}）已派遣给您，处置时限 {deadline}。查看： {link}"),
        "en": ("Case {code} dispatched to you",
               "Case {code} ({category}) was dispatched to you; deadline {deadline}. "
               "See: {link}"),
    },
    "escalated": {
        "zh": ("督办案件：{code}",
               "案件 {code}（{category}）无人受理，已督办给您，处置时限 {deadline}。"
               "查看： {link}"),
        "en": ("Case {code} escalated to you",
               "Case {code} ({category}) was not accepted in time and is escalated to you; "
               "deadline {deadline}. See: {link}"),
    },
    "approval": {
        "zh": ("待您审批：{code}",
               "案件 {code}（{category}）的{request}申请等待您审批。查看： {link}"),
        "en": ("Case {code} waits for your approval",
               "Case {code} ({category}): a request to {request} waits for your approval. "
               "See: {link}"),
    },
    "endpoint_paused": {
        "zh": ("Webhook 已暂停：{url}",
               "Webhook {url} 连续投递失败，已暂停；恢复后将补发积压的事件："
               "gridmgr webhooks resume {endpoint_id}"),
        "en": ("Webhook paused: {url}",
               "Deliveries to the webhook {url} kept failing, so it is paused; the events "
               "waiting are sent once it is resumed: gridmgr webhooks resume {endpoint_id}"),
    },
}

_EXTRA = {
    "carrier": {"zh": "该问题已并入案件 {carrier}，查看进度： {carrier_link}",
                "en": "Your report is carried by case {carrier}; follow it: {carrier_link}"},
    "photo": {"zh": "处置后照片： {photo}", "en": "After the work: {photo}"},
    "rate": {"zh": "请为处置评价： {rate_link}", "en": "Please rate the work: {rate_link}"},
    "unsubscribe": {"zh": "不再接收此案件的消息： {unsubscribe}",
                    "en": "Stop messages about this case: {unsubscribe}"},
}
REQUESTS = {"extend": {"zh": "延期", "en": "extend its deadline"},
            "shelve": {"zh": "挂账", "en": "shelve it"}}


def language_of(value: str | None, default: str) -> str:
    """``value`` when gridmgr speaks it (``zh-CN`` counts as ``zh``), else ``default``."""
    short = (value or "").strip().lower()[:2]
    return short if short in LANGUAGES else default


def render(kind: str, language: str, fields: dict) -> tuple[str, str]:
    """The subject and body of a message of ``kind``; links given in ``fields`` are added."""
    subject, body = TEXTS[kind][language]
    lines = [body.format(**fields)]
    for extra, needs in (("carrier", "carrier"), ("photo", "photo"), ("rate", "rate_link"),
                         ("unsubscribe", "unsubscribe")):
        if fields.get(needs):
            lines.append(_EXTRA[extra][language].format(**fields))
    return subject.format(**fields), "\n\n".join(lines)
