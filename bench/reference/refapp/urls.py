from django.urls import path

from .views import ItemCreate, ItemCreateWithContractRoundTrips, ItemDetail

urlpatterns = [
    path("items", ItemCreate.as_view()),
    path("items/contract", ItemCreateWithContractRoundTrips.as_view()),
    path("items/<int:pk>", ItemDetail.as_view()),
]
