#!/usr/bin/env bash
# Stops the five FacePass services started by scripts/setup.sh. PostgreSQL and
# RabbitMQ keep running (they are shared system services).
exec bash "$(dirname "${BASH_SOURCE[0]}")/lib/services.sh" stop
