import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { client } from './client';
import { ReactiveProvider } from './generated';
import './styles.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ReactiveProvider client={client}>
      <App />
    </ReactiveProvider>
  </StrictMode>,
);
