"""Connection secrets encrypted at rest 密码加密存储: SM4-GCM (GB/T 32907) with a key kept outside the database
(CAIWEI_VAULT_KEY, 32 hex digits, or var/vault_key). A sealed secret is never shown again; only replaced.

A secret may be bound to a context (GCM associated data): a target database seals its password together with the
connection it belongs to (type, host, port, database, user), so the password can only ever be unsealed for that
same connection — change any of them and the sealed text no longer opens."""

from __future__ import annotations

import base64
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from caiwei.audit.keys import local_key

PREFIX = "sm4gcm:"


class VaultError(ValueError):
    pass


@functools.cache
def _key() -> bytes:
    try:
        key = bytes.fromhex(local_key("CAIWEI_VAULT_KEY", "vault_key", 16))
    except ValueError as exc:
        raise VaultError("加密密钥 CAIWEI_VAULT_KEY 应为 32 位十六进制数") from exc
    if len(key) != 16:
        raise VaultError("加密密钥 CAIWEI_VAULT_KEY 应为 32 位十六进制数（128 位）")
    return key


def seal(plaintext: str, context: str = "") -> str:
    if not plaintext:
        return ""
    nonce = os.urandom(12)
    encryptor = Cipher(algorithms.SM4(_key()), modes.GCM(nonce)).encryptor()
    if context:
        encryptor.authenticate_additional_data(context.encode())
    body = encryptor.update(plaintext.encode()) + encryptor.finalize()
    return PREFIX + base64.b64encode(nonce + encryptor.tag + body).decode()


def unseal(token: str, context: str = "") -> str:
    if not token:
        return ""
    if not token.startswith(PREFIX):
        raise VaultError("密文格式不正确")
    try:
        raw = base64.b64decode(token[len(PREFIX) :])
        nonce, tag, body = raw[:12], raw[12:28], raw[28:]
        decryptor = Cipher(algorithms.SM4(_key()), modes.GCM(nonce, tag)).decryptor()
        if context:
            decryptor.authenticate_additional_data(context.encode())
        return (decryptor.update(body) + decryptor.finalize()).decode()
    except (InvalidTag, ValueError) as exc:
        if context:
            raise VaultError(
                "无法解密连接密码：连接信息（类型、主机、端口、库名、用户名）与保存密码时不同，"
                "或密钥、密文有变；请重新输入密码"
            ) from exc
        raise VaultError("无法解密连接密码：密钥与加密时不同，或密文被改动") from exc
