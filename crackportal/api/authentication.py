"""API tokens that expire, and that a password change or a sign-out revokes."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import user_logged_out
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed


def token_expired(token: Token) -> bool:
    return token.created < timezone.now() - timedelta(hours=settings.API_TOKEN_TTL_HOURS)


class ExpiringTokenAuthentication(TokenAuthentication):
    """`Authorization: Token KEY`, valid for API_TOKEN_TTL_HOURS after it was issued."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            token.delete()
            raise AuthenticationFailed("Token expired; ask /api/token/ for a new one.")
        return user, token


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def revoke_tokens_on_password_change(sender, instance, **kwargs):
    if not instance.pk:
        return
    old = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if old is not None and old != instance.password:
        Token.objects.filter(user_id=instance.pk).delete()


@receiver(user_logged_out)
def revoke_tokens_on_sign_out(sender, request, user, **kwargs):
    if user is not None:
        Token.objects.filter(user=user).delete()
