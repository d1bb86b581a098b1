from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 2**31 - 1  # beyond any table; also keeps SQLite from integer overflow


class Pagination(LimitOffsetPagination):
    """?limit= (default 100, at most 1000) and ?offset=."""

    default_limit = 100
    max_limit = 1000

    def get_offset(self, request):
        return min(super().get_offset(request), MAX_OFFSET)
