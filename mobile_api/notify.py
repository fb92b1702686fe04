"""Messages: the link that stops a case's messages, Web Push subscriptions and their key."""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.notify import operations
from gridmgr.notify.senders import vapid_public_key
from mobile_api.auth import auth_required, current_user

blp = Blueprint("notify", __name__, description="Notifications: unsubscribe, Web Push")


class UnsubscribeQuery(Schema):
    case = fields.Integer(required=True, strict=False)
    to = fields.String(required=True, validate=validate.Length(1, 300))
    sig = fields.String(required=True, validate=validate.Length(1, 100))


class PushKeys(Schema):
    p256dh = fields.String(required=True, validate=validate.Length(1, 200))
    auth = fields.String(required=True, validate=validate.Length(1, 100))


class PushSubscriptionSchema(Schema):
    endpoint = fields.String(required=True, validate=validate.Length(1, 1000))
    keys = fields.Nested(PushKeys, required=True)
    language = fields.String(validate=validate.Length(2, 16))


class PushEndpointSchema(Schema):
    endpoint = fields.String(required=True, validate=validate.Length(1, 1000))


_CONFIRM_PAGE = """<!doctype html><html lang="zh"><meta charset="utf-8">
<title>不再接收消息 / Stop messages</title>
<form method="post"><p>不再接收此案件的消息？ Stop messages about this case?</p>
<button type="submit">确定 / Stop</button></form></html>"""


@blp.route("/notify/unsubscribe", methods=["GET"])
@blp.arguments(UnsubscribeQuery, location="query")
def confirm_unsubscribe(query):
    """A page with one button that stops the case's messages (a link opened by a mail
    scanner changes nothing; the button, or a mail program's one-click POST, does)."""
    return Response(_CONFIRM_PAGE, mimetype="text/html")


@blp.route("/notify/unsubscribe", methods=["POST"])
@blp.arguments(UnsubscribeQuery, location="query")
def unsubscribe(query):
    """Stop the messages of one case to the address in the link."""
    operations.stop_messages(query["case"], query["to"], query["sig"])
    if request.accept_mimetypes.best == "text/html":
        return Response("<!doctype html><meta charset='utf-8'><p>已停止 / Stopped.</p>",
                        mimetype="text/html")
    return {"stopped": True, "case_id": query["case"]}


@blp.route("/notify/push/key", methods=["GET"])
def push_key():
    """The VAPID application server key a browser subscribes with."""
    return {"application_server_key": vapid_public_key()}


@blp.route("/notify/push/subscriptions", methods=["POST"])
@blp.arguments(PushSubscriptionSchema)
@auth_required
def subscribe(body):
    """Send this browser the signed-in user's messages by Web Push."""
    subscription_id = operations.subscribe_push(current_user(), body["endpoint"],
                                                body["keys"]["p256dh"], body["keys"]["auth"],
                                                body.get("language"))
    return {"id": subscription_id}, 201


@blp.route("/notify/push/subscriptions", methods=["DELETE"])
@blp.arguments(PushEndpointSchema)
@auth_required
def unsubscribe_browser(body):
    """Stop Web Push to this browser."""
    return {"removed": operations.unsubscribe_push(current_user(), body["endpoint"])}
