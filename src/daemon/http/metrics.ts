import { Counter, type Registry } from 'prom-client';

export interface HttpMetrics {
  /** Client WebSocket protocol errors (bad frames, oversized messages): the client's fault, so counted, not logged loud. */
  wsProtocolErrors: Counter;
  /** Stream clients cut off because they did not read within the backlog bound. */
  streamClientsCut: Counter;
  /** Requests answered 503 because the connection cap was reached. */
  connectionsRefused: Counter;
}

export function createHttpMetrics(registry: Registry): HttpMetrics {
  const registers = [registry];
  return {
    wsProtocolErrors: new Counter({ name: 'coderlite_http_websocket_protocol_errors_total', help: 'WebSocket protocol errors caused by clients.', registers }),
    streamClientsCut: new Counter({ name: 'coderlite_http_stream_clients_cut_total', help: 'Stream clients closed with 1013 for not reading.', registers }),
    connectionsRefused: new Counter({ name: 'coderlite_http_connections_refused_total', help: 'Requests answered 503 at the connection cap.', registers }),
  };
}
