from typing import Any

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class Pagination(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200); responses carry count, next, previous, results.

    A `page` or `page_size` that is not a whole number in range is a 400 naming it (DRF would
    quietly use the default size, or answer 404 for any page it cannot read); a page past the
    last is a 404."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    page_query_description = "The page to return, from 1."
    page_size_query_description = "Results per page: default 50, at most 200."
    last_page_strings = ()

    def _whole_number(self, request: Request, name: str, maximum: int | None = None) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        value = values[-1].strip()
        if value.isascii() and value.isdigit() and 1 <= int(value) <= (maximum or int(value)):
            return int(value)
        bound = f"from 1 to {maximum}" if maximum else "from 1"
        raise serializers.ValidationError({name: [f"Send a whole number {bound}."]})

    def get_page_size(self, request: Request) -> int:
        return self._whole_number(request, self.page_size_query_param, self.max_page_size) or self.page_size

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self._whole_number(request, self.page_query_param)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
        return parameters

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated = super().get_paginated_response_schema(schema)
        properties = paginated["properties"]
        properties["count"]["description"] = "How many results there are in all pages."
        properties["next"]["description"] = "The URL of the next page; null on the last page."
        properties["previous"]["description"] = "The URL of the previous page; null on the first page."
        properties["results"]["description"] = "This page's results."
        return paginated
