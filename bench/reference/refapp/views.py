from rest_framework import generics, serializers

from .models import Item


class ItemSerializer(serializers.ModelSerializer):
    amount = serializers.IntegerField(min_value=1)
    currency = serializers.RegexField(r"^[A-Z]{3}$")

    class Meta:
        model = Item
        fields = ["id", "amount", "currency", "created_at"]


class ItemCreate(generics.CreateAPIView):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer


class ItemDetail(generics.RetrieveAPIView):
    queryset = Item.objects.all()
    serializer_class = ItemSerializer
