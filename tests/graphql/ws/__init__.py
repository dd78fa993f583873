"""Tests of the GraphQL websocket (``notification/graphql/ws/``)."""
