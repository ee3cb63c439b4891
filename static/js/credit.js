// Card and PayPal payments on the pay and purchase pages. Card details go from Stripe's
// elements straight to Stripe; our server only ever sees the ids Stripe hands back.
(() => {
  const configNode = document.getElementById("stripe-config");
  if (!configNode || typeof Stripe === "undefined") return;
  const config = JSON.parse(configNode.textContent);
  const stripe = Stripe(config.publishableKey);
  const show = (box, message) => {
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  };

  // A new card: Stripe sets it up (3-D Secure there if the bank asks), then our server
  // charges it, knowing only the SetupIntent's id.
  const cardForm = document.getElementById("card-form");
  if (cardForm && config.setupClientSecret) {
    const card = stripe.elements().create("card");
    card.mount("#card-element");
    const errors = document.getElementById("card-errors");
    const button = cardForm.querySelector("button[type=submit]");
    cardForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      show(errors, "");
      button.disabled = true;
      const result = await stripe.confirmCardSetup(config.setupClientSecret, { payment_method: { card } });
      if (result.error || !result.setupIntent) {
        show(errors, (result.error && result.error.message) || "The card was not accepted.");
        button.disabled = false;
        return;
      }
      cardForm.querySelector("[name=setup_intent]").value = result.setupIntent.id;
      HTMLFormElement.prototype.submit.call(cardForm);
    });
  }

  // The bank wants the payment confirmed (3-D Secure); the page reloads to show the outcome.
  const authenticate = document.getElementById("authenticate");
  if (authenticate && config.paymentClientSecret) {
    authenticate.addEventListener("click", async () => {
      authenticate.disabled = true;
      // Success or not, the server asks Stripe again on reload and shows what happened.
      await stripe.confirmCardPayment(config.paymentClientSecret);
      window.location.reload();
    });
  }

  // PayPal: Stripe sends the person to PayPal and back to the purchase page (returnUrl).
  const paypal = document.getElementById("paypal-button");
  if (paypal && config.paymentClientSecret) {
    const errors = document.getElementById("paypal-errors");
    paypal.addEventListener("click", async () => {
      if (typeof stripe.confirmPayPalPayment !== "function") {
        show(errors, "PayPal is not available with this payment server.");
        return;
      }
      paypal.disabled = true;
      const result = await stripe.confirmPayPalPayment(config.paymentClientSecret, { return_url: config.returnUrl });
      if (result && result.error) {
        show(errors, result.error.message || "PayPal could not be started.");
        paypal.disabled = false;
      }
    });
  }
})();
