"""The app's GraphQL parts: types, inputs, queries, mutations and subscriptions.

A host project merges them into its own strawberry schema (``parts`` lists
them); this repository's ``schema/`` package does exactly that for its own
project. Every field filters through one visibility rule
(``permissions.visible_to``) and parses ids with one parser (``notification.values``).
"""
