// The live event stream: /ws/events, reconnected with a growing wait when it drops. Each
// (re)connection starts with the state message, so the model is re-read every time.

const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 15000;

/**
 * connectEvents({url: () => string, onMessage, onStatus, onRejected}) -> {close()}
 * onStatus('connecting' | 'live' | 'retrying', retryInMs); onRejected() when a connection closed
 * before it ever got a message (the page checks the token: a refused one is not retried here).
 */
export function connectEvents({ url, onMessage, onStatus = () => {}, onRejected = async () => true }) {
  let socket = null;
  let retryMs = FIRST_RETRY_MS;
  let timer = null;
  let closed = false;

  function open() {
    if (closed) return;
    onStatus('connecting');
    let gotMessage = false;
    socket = new WebSocket(url());
    socket.onmessage = (event) => {
      if (!gotMessage) {
        gotMessage = true;
        retryMs = FIRST_RETRY_MS;
        onStatus('live');
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      onMessage(message);
    };
    socket.onclose = async () => {
      socket = null;
      if (closed) return;
      // A connection refused at once may be a token the server no longer takes.
      if (!gotMessage && !(await onRejected())) return;
      onStatus('retrying', retryMs);
      timer = setTimeout(open, retryMs);
      retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
    };
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close();
    },
  };
}
