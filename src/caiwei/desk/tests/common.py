"""What the desk tests file a ticket with, unless a test says otherwise."""

FIELDS = {
    "system": "国库集中支付",
    "ticket_type": "故障",
    "severity": "一般",
    "title": "支付凭证发送失败",
    "description": "凭证状态一直为“发送中”",
    "requester_name": "经办人（演示）",
}
