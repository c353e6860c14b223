// "A person is on the line": a banner (in main.js) and a tone through WebAudio. Browsers only let
// a page make sound after the user has interacted with it, so the audio context is created and
// resumed on the first click or key press (unlockAudio).

let context = null;

export function unlockAudio() {
  try {
    if (!context) context = new AudioContext();
    if (context.state === 'suspended') context.resume();
  } catch {
    context = null;
  }
}

/** Two short rising beeps; true when the browser let them play. */
export async function playAlertTone() {
  if (!context) unlockAudio();
  if (!context) return false;
  if (context.state === 'suspended') {
    try {
      await Promise.race([context.resume(), new Promise((resolve) => setTimeout(resolve, 300))]);
    } catch {}
  }
  if (context.state !== 'running') return false;
  const start = context.currentTime + 0.02;
  [[660, 0], [880, 0.25], [660, 0.6], [880, 0.85]].forEach(([frequency, offset]) => {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.type = 'sine';
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.2);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(start + offset);
    oscillator.stop(start + offset + 0.22);
  });
  return true;
}
