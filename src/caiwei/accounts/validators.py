from django.core.exceptions import ValidationError


class CharacterClassValidator:
    """口令复杂度: at least ``min_classes`` of upper case, lower case, digits and symbols."""

    def __init__(self, min_classes: int = 3):
        self.min_classes = min_classes

    def _classes(self, password: str) -> int:
        return sum(
            [
                any(c.isupper() for c in password),
                any(c.islower() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            ]
        )

    def validate(self, password, user=None):
        if self._classes(password) < self.min_classes:
            raise ValidationError(
                f"密码须包含大写字母、小写字母、数字、符号中的至少 {self.min_classes} 类",
                code="password_classes",
            )

    def get_help_text(self):
        return f"密码须包含大写字母、小写字母、数字、符号中的至少 {self.min_classes} 类。"
