DROP TABLE catalog.webhook_deliveries;
DROP TABLE catalog.webhooks;
